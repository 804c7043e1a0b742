"""Figures for "inside the network" (cnn/explain.py). Not a test: run it by hand.

    nice -n 10 python benchmarks/bench_explain.py [--only faithfulness,speed,snapshots]

(a) faithfulness: on images whose label is the quadrant holding a bright square, the share
    of 40 held-out images whose "where it looked" map peaks in that quadrant, per method,
    for the tutorial net, the efficient preset and the strong preset (batch norm, dropout,
    shift augmentation; flips off, they would move the square), two training seeds each;
(b) speed: milliseconds per image for the whole view (probabilities, feature maps of every
    layer, filters of every conv layer, the default map; then with every map; then with
    the pictures drawn too) with a cached Explainer, CIFAR-shaped images, median of repeats;
(c) the live-snapshot callback's cost to training: the tutorial net on CIFAR-shaped data
    with and without `SnapshotWriter`, alternated, as a throughput ratio; and the time spent
    inside the callback as a share of training time, which the noise of a shared machine
    does not blur.

Results go to bench-out/explain.json. The machine is noisy: compare figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

from cnn import explain as ex
from cnn.models import compile_model, make_model
from cnn.presets import preset


def quadrant_images(count: int, seed: int, side: int = 32, square: int = 8):
    """Grey noise (0-99) with one bright square inside one quadrant; label = the quadrant
    (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right). As in tests/test_explain.py."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, (count, side, side, 1), dtype=np.uint8)
    y = rng.integers(0, 4, count)
    half = side // 2
    for image, label in zip(x, y):
        top = (label // 2) * half + rng.integers(0, half - square + 1)
        left = (label % 2) * half + rng.integers(0, half - square + 1)
        image[top:top + square, left:left + square] = 255
    return x, y


def peak_quadrant(values: np.ndarray) -> int:
    row, col = np.unravel_index(np.argmax(values), values.shape)
    return int(row >= values.shape[0] // 2) * 2 + int(col >= values.shape[1] // 2)


def plain_resize_grad_cam(explainer: ex.Explainer, image: np.ndarray, class_index: int):
    """Textbook Grad-CAM drawn as most tools draw it: the last conv layer's grid stretched
    over the whole image (Pillow bilinear), ignoring where its receptive fields lie."""
    result = explainer._gradients(image[np.newaxis].astype(np.float32), np.int32(class_index))
    activation = result["activation"].numpy()
    grid = np.maximum(activation @ result["activation_gradient"].numpy().mean(axis=(0, 1)), 0)
    height, width, _ = image.shape
    picture = Image.fromarray(grid.astype(np.float32), mode="F")
    return np.asarray(picture.resize((width, height), Image.Resampling.BILINEAR))


FAITHFULNESS_SETUPS = {
    # name: (preset changes, image side, square side, training images, epochs, batch size)
    "tutorial": ({}, 32, 8, 2000, 3, 64),
    "efficient": ({}, 32, 8, 2000, 3, 64),
    # Batch norm's running statistics need a few hundred steps before inference is right:
    # small images, batches of 16 (see tests/test_explain.py).
    "strong": ({"augment_flip": False}, 16, 4, 1500, 4, 16),
}


def bench_faithfulness(seeds: list[int]) -> dict:
    results = {}
    for name, (changes, side, square, count, epochs, batch) in FAITHFULNESS_SETUPS.items():
        params = preset(name, precision="float32", **changes)
        for seed in seeds:
            keras.utils.set_random_seed(seed)
            x, y = quadrant_images(count, seed, side, square)
            x_test, y_test = quadrant_images(40, 1000 + seed, side, square)
            model = compile_model(make_model(params, (side, side, 1), 4), params)
            targets = keras.utils.to_categorical(y, 4) if params.label_smoothing else y
            start = time.perf_counter()
            model.fit(x, targets, epochs=epochs, batch_size=batch, verbose=0)
            train_seconds = time.perf_counter() - start
            explainer = ex.Explainer(model)
            accuracy = float(np.mean(explainer.probabilities(x_test).argmax(1) == y_test))
            hits: dict[str, int] = {}
            for image, label in zip(x_test, y_test):
                label = int(label)
                found = explainer.explain(image, class_index=label, methods=ex.METHODS)
                maps = {method: heatmap.values for method, heatmap in found.heatmaps.items()}
                maps["occlusion (probability drop)"] = explainer.occlusion(
                    image, label, measure="probability").values
                maps["gradcam (plain resize)"] = plain_resize_grad_cam(explainer, image, label)
                for method, values in maps.items():
                    hits[method] = hits.get(method, 0) + int(peak_quadrant(values) == label)
            key = f"{name} seed {seed}"
            results[key] = {"test_accuracy": accuracy, "train_seconds": train_seconds,
                            "image_side": side, "peaks_in_place_of_40": hits,
                            "share": {m: h / len(y_test) for m, h in hits.items()}}
            print(f"  (a) {key}: accuracy {accuracy:.3f}, peaks in place {hits}",
                  file=sys.stderr)
    return results


def render_view(result: ex.Explanation) -> list[np.ndarray]:
    """The pictures the view shows: overlays, every filter grid, every feature-map grid."""
    pictures = [ex.overlay(result.image, h, factor=4) for h in result.heatmaps.values()]
    pictures += [ex.filter_grid(f) for f in result.filters.values()]
    pictures += [ex.feature_map_grid(m, max_maps=32, factor=2) for m in result.feature_maps]
    return pictures


def bench_speed(repeats: int) -> dict:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (repeats, 32, 32, 3), dtype=np.uint8)
    results = {}
    setups = [("tutorial", "float32"), ("efficient", "float32"), ("strong", "float32"),
              ("tutorial", "mixed_bfloat16")]
    for name, precision in setups:
        keras.utils.set_random_seed(0)
        model = make_model(preset(name, precision=precision), (32, 32, 3), 10)
        start = time.perf_counter()
        explainer = ex.Explainer(model)
        explainer.explain(images[0], methods=ex.METHODS)  # traces both functions
        first = time.perf_counter() - start
        timings: dict[str, list[float]] = {"default view": [], "every map": [],
                                            "every map + pictures": []}
        for image in images:
            for kind, seconds in timings.items():
                methods = (ex.DEFAULT_METHOD,) if kind == "default view" else ex.METHODS
                start = time.perf_counter()
                result = explainer.explain(image, methods=methods)
                if kind == "every map + pictures":
                    render_view(result)
                seconds.append(time.perf_counter() - start)
        key = f"{name} {precision}"
        results[key] = {"first_call_ms (build + trace)": first * 1000,
                        **{f"{k} ms (median)": statistics.median(v) * 1000
                           for k, v in timings.items()},
                        "every map + pictures ms (max)": max(timings["every map + pictures"])
                        * 1000}
        print(f"  (b) {key}: {results[key]}", file=sys.stderr)
    return {"per_preset": results, "image_shape": [32, 32, 3], "classes": 10,
            "repeats": repeats, "target_ms": 300}


class TimedSnapshotWriter(ex.SnapshotWriter):
    """SnapshotWriter that adds up the wall time spent in its own hooks."""

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        super().on_train_begin(logs)
        self.seconds = time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.seconds += time.perf_counter() - start


def bench_snapshots(repeats: int, images: int, epochs: int) -> dict:
    """Tutorial net, CIFAR-shaped images (noise, random labels: only speed matters here),
    batch 64, 16 batches per call as the run engine does. The whole fit() is timed, so the
    callback's one-off trace at the start counts. Wall time swings by ±30 % between epochs
    on a shared 2-core machine, so CPU time of this process is recorded too, and the time
    spent inside the callback is the figure to trust."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images)
    params = preset("tutorial", precision="float32")
    times: dict[str, list[float]] = {"without": [], "with": []}
    cpu: dict[str, list[float]] = {"without": [], "with": []}
    inside: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(repeats):
            for kind in (("without", "with") if i % 2 == 0 else ("with", "without")):
                keras.utils.set_random_seed(0)
                model = compile_model(make_model(params, (32, 32, 3), 10), params,
                                      steps_per_execution=16)
                callbacks = []
                if kind == "with":
                    writer = TimedSnapshotWriter(Path(folder) / "snapshot.npz", x[0])
                    callbacks = [writer]
                start, start_cpu = time.perf_counter(), time.process_time()
                model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, callbacks=callbacks)
                times[kind].append(time.perf_counter() - start)
                cpu[kind].append(time.process_time() - start_cpu)
                if kind == "with":
                    inside.append(writer.seconds / times[kind][-1])
                print(f"  (c) {kind}: {times[kind][-1]:.2f} s", file=sys.stderr)
        size = (Path(folder) / "snapshot.npz").stat().st_size
    ratios = [w / o for w, o in zip(times["without"], times["with"])]
    cpu_ratios = [w / o for w, o in zip(cpu["without"], cpu["with"])]
    return {"seconds_without": times["without"], "seconds_with": times["with"],
            "cpu_seconds_without": cpu["without"], "cpu_seconds_with": cpu["with"],
            "throughput_ratio_with_vs_without (wall, median of pairs)": statistics.median(ratios),
            "throughput_ratio_with_vs_without (cpu, median of pairs)":
                statistics.median(cpu_ratios),
            "ratios_wall": ratios, "ratios_cpu": cpu_ratios,
            "load_average_after": os.getloadavg(),
            "share_of_training_time_inside_the_callback (median)": statistics.median(inside),
            "snapshot_bytes": size, "train_images": images, "epochs": epochs,
            "target": "cost <= 2 %"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="faithfulness,speed,snapshots")
    parser.add_argument("--out", default=str(REPO / "bench-out" / "explain.json"))
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    report: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "processor": platform.processor()}}
    if "faithfulness" in wanted:
        report["faithfulness"] = bench_faithfulness(seeds=[0, 1])
    if "speed" in wanted:
        report["speed"] = bench_speed(repeats=15)
    if "snapshots" in wanted:
        report["snapshots"] = bench_snapshots(repeats=5, images=4000, epochs=3)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
