"""The Inside page's pictures and words: filters, feature maps and heatmaps laid out as
images, the layers as a diagram's blocks and as a table, and each panel's sentence for a
student. Everything is computed by `cnn.explain`; user-given strings pass `common.md`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from cnn import explain

SIDE = 240  # px: the image and its heatmaps, crisp (7× for 32 px, 8× for 28 px) in the
# 238 px columns of a 1280-pixel-wide projector
MAP_TILE = 84  # px: one feature map in the flow
MAPS_SHOWN = 8  # strongest maps per layer, unless "all" is asked for


def filter_picture(filters: explain.Filters, first: bool) -> tuple[str, bytes, str]:
    count, kh, kw, channels = filters.images.shape
    if first or channels == 1:
        grid = explain.filter_grid(filters, factor=max(4, 48 // kw), columns=8)
        what = ("colour" if filters.colour else "grey") + f" pattern of {kh}×{kw} pixels"
        caption = (f"{count} filters, each a {what} it responds to. Grey is 0; the brighter "
                   "or darker, the stronger the weight.")
    else:
        shown, reads = min(count, 16), min(channels, 16)
        grid = explain.filter_grid(filters, factor=max(3, 15 // kw), max_filters=16,
                                   max_channels=16)
        caption = (f"{shown} of {count} filters, one per row; each row has a {kh}×{kw} "
                   f"square for each map of the layer before that it reads ({reads} of "
                   f"{channels} shown).")
    return filters.layer, explain.png_bytes(grid), caption


# --- the page's URL: ?run=<id>&test=<index>&class=<name> -----------------------------------
def enlarged(image: np.ndarray, side: int = SIDE) -> np.ndarray:
    """uint8 RGB, enlarged by a whole factor to about `side` px: crisp network pixels."""
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    return explain.enlarge(rgb, max(1, side // max(image.shape[:2])))


def heatmap_picture(expl: explain.Explanation, method: str) -> np.ndarray:
    heatmap = expl.heatmaps[method]
    factor = max(1, SIDE // max(expl.image.shape[:2]))
    return explain.overlay(expl.image, heatmap, alpha=0.6, factor=factor)


def strength_sentence(heatmap: explain.Heatmap, name: str) -> str:
    """What the occlusion map's 1.0 stands for, in words a student can check."""
    if heatmap.scale <= 0:
        return (f"Hiding any part of the image does not make it less sure of “{name}”: "
                "nothing here counts for that class.")
    factor = math.exp(heatmap.scale)
    return (f"Hiding the brightest part makes it {factor:,.1f}× less sure of “{name}” "
            "(in odds); dark parts hardly matter.")


def class_label(class_names: Sequence[str], probabilities: np.ndarray, index) -> str:
    if index is None:
        best = int(np.argmax(probabilities))
        return f"Its answer: {class_names[best]} ({probabilities[best]:.0%})"
    return f"{class_names[index]} ({probabilities[index]:.0%})"


def flowing_layers(feature_maps: list[explain.FeatureMaps],
                   activations: Sequence[str]) -> list[explain.FeatureMaps]:
    """The maps a student follows: what each block passes on. A conv without its own
    activation (batch norm comes between) is left out: its ReLU, shown, comes next."""
    return [m for m in feature_maps if m.kind != "Conv2D" or m.layer in activations]


def feature_map_picture(maps: explain.FeatureMaps, all_maps: bool) -> tuple[np.ndarray, str]:
    count, height, width = maps.maps.shape
    shown = count if all_maps else min(count, MAPS_SHOWN)
    columns = 4 if all_maps and count > 8 else 2
    tile = MAP_TILE if columns == 2 else MAP_TILE // 2
    grid = explain.feature_map_grid(maps, columns=columns, max_maps=shown,
                                    factor=max(1, tile // max(height, width)))
    what = {"MaxPooling2D": "max-pooled", "AveragePooling2D": "average-pooled"}.get(
        maps.kind, "after ReLU" if maps.kind != "Conv2D" else "conv + ReLU")
    return grid, f"{what} · {shown} of {count} maps, {width}×{height}"


# --- the layers as a diagram ---------------------------------------------------------------
GROUPS = {"Conv2D": "Convolution", "MaxPooling2D": "Pooling", "AveragePooling2D": "Pooling",
          "Flatten": "Flatten", "Dense": "Dense", "GlobalAveragePooling2D": "Pooling",
          "GlobalMaxPooling2D": "Pooling"}
DOES = {"Convolution": "slides small filters over the image: one map per filter",
        "Pooling": "keeps the strongest value of each 2×2 patch: half the size",
        "Flatten": "lays the maps out as one long list of numbers",
        "Dense": "each output weighs every number of the list before",
        "Answer": "one probability per class"}
EXTRA = {"Rescaling": "scaled to 0–1", "BatchNormalization": "batch norm", "ReLU": "ReLU",
         "Dropout": "dropout (training only)", "RandomFlip": "random flips (training only)",
         "RandomTranslation": "random shifts (training only)"}


def diagram_blocks(layers: list[explain.LayerInfo], image_shape: tuple[int, ...]) -> pd.DataFrame:
    """One block per layer that changes the shape (the input first); the layers that act
    on each value alone (scaling, batch norm, ReLU, dropout) are named in the tooltip of
    the block they follow."""
    height, width, channels = image_shape
    rows = [{"Layer": "input", "group": "Input", "shape": (height, width, channels),
             "Does": "the image: " + ("colour (3 channels)" if channels == 3 else "grey"),
             "Parameters": 0, "Sees": "1×1 pixel"}]
    for info in layers:
        group = GROUPS.get(info.kind)
        if group is None:  # pointwise: noted on the block before
            rows[-1]["Does"] += f" · then {EXTRA.get(info.kind, info.kind)}"
            continue
        if info is layers[-1] and info.kind == "Dense":
            group = "Answer"
        field = info.receptive_field
        rows.append({"Layer": info.name, "group": group, "shape": info.output_shape,
                     "Does": DOES[group], "Parameters": info.parameters,
                     "Sees": "the whole image" if field is None else
                     f"{field[0]}×{field[1]} pixels of the input"})
    frame = pd.DataFrame(rows)
    spatial = frame["shape"].map(len) == 3
    side = frame["shape"].map(lambda s: s[0] if len(s) == 3 else 0)
    depth = frame["shape"].map(lambda s: s[-1])
    max_units = max(int(depth[~spatial].max()) if (~spatial).any() else 1, 1)
    frame["height"] = np.where(spatial, side / height,
                               np.sqrt(depth / max_units))  # lists: square-root scale
    frame["width"] = np.where(spatial, depth / depth[spatial].max(), 0.0)
    frame["Output"] = frame["shape"].map(lambda s: "×".join(map(str, s)))
    frame["label"] = frame["Layer"] + "|" + frame["Output"]
    return frame.drop(columns="shape")


def layer_frame(layers: list[explain.LayerInfo]) -> pd.DataFrame:
    return pd.DataFrame([{
        "layer": info.name, "kind": info.kind, "output": "×".join(map(str, info.output_shape)),
        "parameters": info.parameters,
        "sees (pixels)": "all" if info.receptive_field is None
        else f"{info.receptive_field[0]}×{info.receptive_field[1]}",
        "note": "training only" if info.training_only else ""} for info in layers])
