"""`python -m cnn explain RUN_ID IMAGE... [--class NAME] [--out DIR] [--json]`: where a run's
network looked to answer, for image files, and (with --out) every picture of the Inside
page as PNGs.

With --json the last line of stdout is one object:
`{"run_id", "layers": [{name, kind, shape}...], "images": [{file, label, probability, class,
method, heatmap}...]}`, where `heatmap` is the default "where it looked" map
(`cnn.explain.DEFAULT_METHOD`) for the predicted class, or --class, as rows at the
network's input height × width with values in [0, 1]. An image that cannot be read is
`{file, error}`: the others are still explained, and the command exits with 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from cnn import datasets, runs
from cnn.errors import CnnError
from cnn.store import atomic_write_bytes

HEATMAP_DECIMALS = 4  # 1024 values for a 32×32 image: ~7 kB of JSON per image


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    """Register `explain` on cnn.cli's subcommands (`common`: the shared flags)."""
    p = sub.add_parser("explain", parents=[common], help="where a run's network looked to "
                       "classify image files; with --out, its filters, feature maps and "
                       "heatmaps as pictures")
    p.add_argument("run_id")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="explain this class instead of the predicted one (\"why not cat?\")")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write the pictures (filters, feature maps, heatmap overlays, "
                   "saliency) as PNGs into DIR")
    p.set_defaults(handler=cmd_explain)


def class_index(name: str | None, class_names: list[str]) -> int | None:
    """The index of class `name` (exact, else ignoring case); CnnError naming the classes."""
    if name is None:
        return None
    if name in class_names:
        return class_names.index(name)
    folded = [c.casefold() for c in class_names]
    if name.casefold() in folded:
        return folded.index(name.casefold())
    shown = ", ".join(class_names[:20]) + (", …" if len(class_names) > 20 else "")
    raise CnnError(f"There is no class {name!r}; the classes are: {shown}.")


def cmd_explain(args) -> int:
    from cnn import explain, inference
    from cnn.checkpoints import load_model

    run = runs.get_run(args.run_id, args.runs_dir)
    if not run.has_model():
        raise CnnError(f"Run {run.id} has no trained model yet.")
    info = datasets.get_info(run.config.dataset)
    class_names = list(info.class_names)
    wanted = class_index(args.class_name, class_names)
    model = load_model(run.model_path)
    explainer = explain.Explainer(model)
    if explainer.num_classes != len(class_names):
        raise CnnError(f"The model of run {run.id} has {explainer.num_classes} outputs but "
                       f"its dataset {info.title} has {len(class_names)} classes.")

    files, read_errors = [], {}
    for path in args.images:
        try:
            files.append((str(path), path.read_bytes()))
        except OSError as error:
            read_errors[str(path)] = f"Cannot read {path}: {error.strerror}."
    results = {r.name: r for r in inference.classify_files(
        model, files, info.image_shape, class_names, info.light_on_dark, top_k=1,
        framing=info.framing)}
    methods = list(explain.METHODS) if args.out else [explain.DEFAULT_METHOD]
    if explainer.cam_layer is None:  # no conv layer: only the maps that need none
        methods = [m for m in methods if m not in (explain.GRADCAM, explain.HIRESCAM)]

    payload, lines, written = [], [], 0
    folders = _Folders(args.out)
    if args.out:
        written += _write_filters(explainer, args.out)
    for path in args.images:
        name = str(path)
        error = read_errors.get(name) or results[name].error
        if error:
            payload.append({"file": name, "error": error})
            print(f"error: {error}", file=sys.stderr)
            continue
        result = explainer.explain(results[name].prepared.array, wanted, methods)
        heatmap = result.heatmap
        label, probability = class_names[result.predicted], result.probabilities[result.predicted]
        payload.append({
            "file": name, "label": label, "probability": float(probability),
            "class": class_names[result.class_index], "method": heatmap.method,
            "heatmap": [[round(float(v), HEATMAP_DECIMALS) for v in row]
                        for row in heatmap.values]})
        row, col = divmod(int(heatmap.values.argmax()), heatmap.values.shape[1])
        asked = "" if wanted is None else f"; for {class_names[wanted]}"
        lines.append(f"{name}: {label} {probability:.1%}{asked}, it looked most at row {row}, "
                     f"column {col} of {heatmap.values.shape[0]}×{heatmap.values.shape[1]} "
                     f"({heatmap.title.lower()})")
        if args.out:
            written += _write_pictures(result, folders.next(path))
    if args.out:
        lines.append(f"wrote {written} pictures to {args.out}")
    layers = [{"name": layer.name, "kind": layer.kind, "shape": list(layer.output_shape)}
              for layer in explainer.layers]
    document: dict[str, Any] = {"run_id": run.id, "layers": layers, "images": payload}
    print(json.dumps(document) if args.json else "\n".join(lines))
    return 2 if any("error" in p for p in payload) else 0


class _Folders:
    """One folder per image under --out, named after the file, never the same twice."""

    def __init__(self, out: Path | None):
        self.out, self.used = out, set()

    def next(self, path: Path) -> Path:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "image"
        name, n = stem, 2
        while name in self.used:
            name, n = f"{stem}-{n}", n + 1
        self.used.add(name)
        return self.out / name


def _write_png(path: Path, picture) -> int:
    from cnn.explain import png_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png_bytes(picture))
    return 1


def _factor(side: int, target: int = 256) -> int:
    return max(1, target // side)


def _write_filters(explainer, out: Path) -> int:
    from cnn.explain import filter_grid

    written = 0
    for i, filters in enumerate(explainer.filters().values()):
        kw = filters.images.shape[2]
        factor = max(4, 48 // kw) if i == 0 else max(3, 15 // kw)
        written += _write_png(out / f"filters-{filters.layer}.png",
                              filter_grid(filters, factor=factor))
    return written


def _write_pictures(result, folder: Path) -> int:
    """The image, one overlay per heatmap, and every layer's feature maps."""
    from cnn.explain import enlarge, feature_map_grid, overlay

    height, width = result.image.shape[:2]
    factor = _factor(max(height, width))
    image = result.image if result.image.shape[-1] == 3 else result.image[..., 0]
    written = _write_png(folder / "image.png", enlarge(image, factor))
    for method, heatmap in result.heatmaps.items():
        written += _write_png(folder / f"heatmap-{method}.png",
                              overlay(result.image, heatmap, alpha=0.6, factor=factor))
    for maps in result.feature_maps:
        side = max(maps.maps.shape[1:])
        written += _write_png(folder / f"maps-{maps.layer}.png",
                              feature_map_grid(maps, factor=_factor(side, 64)))
    return written
