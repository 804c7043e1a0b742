"""Pictures of a network's inside, with numpy and Pillow only (no TensorFlow): filters and
feature maps as data and as tiled pictures, and the training snapshots
`cnn.explain.SnapshotWriter` writes. A page that only shows a snapshot (the Train page, every
second while a run trains) imports this, not `cnn.explain`, so the web server never loads
TensorFlow for it; `cnn.explain` re-exports everything here.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# --- filters and feature maps --------------------------------------------------------------


@dataclass
class Filters:
    """A conv layer's kernels as pictures: 0.5 + 0.5·w/scale, so a weight of 0 is mid-grey
    and one scale (the layer's largest |w|) serves all its filters, which can therefore be
    compared with each other (a faint filter has small weights)."""

    layer: str
    images: np.ndarray  # float32 (filters, kernel_h, kernel_w, in_channels) in [0, 1]
    scale: float  # the layer's largest |weight|: 0 and 1 in `images` are −scale and +scale
    colour: bool  # the first conv of a colour network: each filter is one RGB picture

    def weights(self) -> np.ndarray:
        """The kernel back in Keras's layout (kernel_h, kernel_w, in_channels, filters)."""
        return np.transpose((self.images - 0.5) * (2 * self.scale), (1, 2, 3, 0))


def kernel_filters(kernel: np.ndarray, layer: str, colour: bool) -> Filters:
    """Filters from a Keras conv kernel (kernel_h, kernel_w, in_channels, filters)."""
    kernel = np.asarray(kernel, dtype=np.float32)
    scale = float(np.abs(kernel).max(initial=0.0)) or 1.0  # an all-zero kernel stays grey
    images = np.transpose(0.5 + 0.5 * kernel / scale, (3, 0, 1, 2)).astype(np.float32)
    return Filters(layer, images, scale, colour)



@dataclass
class FeatureMaps:
    """One layer's output for one image, strongest channels first. A channel's strength is
    its mean |activation| (after a ReLU: its mean activation)."""

    layer: str
    kind: str
    maps: np.ndarray  # float32 (channels, h, w), strongest first
    channels: np.ndarray  # int (channels,): the model's index of each map
    strength: np.ndarray  # float32 (channels,): mean |activation|, descending


def sorted_maps(layer: str, kind: str, activations: np.ndarray) -> FeatureMaps:
    """FeatureMaps from one image's (h, w, channels) activations."""
    maps = np.transpose(np.asarray(activations, dtype=np.float32), (2, 0, 1))
    strength = np.abs(maps).mean(axis=(1, 2))
    order = np.argsort(-strength, kind="stable")
    return FeatureMaps(layer, kind, maps[order], order, strength[order])


# --- pictures ------------------------------------------------------------------------------

GAP_COLOUR = 255  # white lines between tiles


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement: every network pixel stays a visible square."""
    if factor <= 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def tile_grid(tiles: np.ndarray, columns: int, factor: int = 1, gap: int = 1) -> np.ndarray:
    """uint8 RGB grid of (N, h, w, 3) uint8 tiles, row by row, `gap` white pixels apart."""
    count, height, width = tiles.shape[:3]
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    th, tw = height * factor, width * factor
    grid = np.full((rows * th + (rows - 1) * gap, columns * tw + (columns - 1) * gap, 3),
                   GAP_COLOUR, np.uint8)
    for i, tile in enumerate(tiles):
        top, left = (i // columns) * (th + gap), (i % columns) * (tw + gap)
        grid[top:top + th, left:left + tw] = enlarge(tile, factor)
    return grid


def filter_grid(filters: Filters, factor: int = 8, gap: int = 1, columns: int = 8,
                max_filters: int = 64, max_channels: int = 16) -> np.ndarray:
    """The filters as a uint8 RGB picture, on their layer's common scale (0 = mid-grey).

    Colour filters, and those of a grey image, are one tile each, `columns` a row; a deeper
    layer's filters are one row each with a grey tile per input channel (at most
    `max_filters` rows and `max_channels` channels)."""
    images = filters.images[:max_filters]
    if filters.colour or images.shape[-1] == 1:
        tiles = np.rint(_rgb_tiles(images) * 255).astype(np.uint8)
        return tile_grid(tiles, columns, factor, gap)
    per_channel = images[..., :max_channels]  # (filters, kh, kw, channels)
    count, kh, kw, channels = per_channel.shape
    tiles = np.transpose(per_channel, (0, 3, 1, 2)).reshape(count * channels, kh, kw)
    tiles = np.rint(np.repeat(tiles[..., np.newaxis], 3, axis=-1) * 255).astype(np.uint8)
    return tile_grid(tiles, channels, factor, gap)


def _rgb_tiles(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def feature_map_grid(maps: FeatureMaps, columns: int = 8, max_maps: int | None = None,
                     factor: int = 1, gap: int = 1) -> np.ndarray:
    """A layer's maps (strongest first) as one uint8 RGB picture on one scale for the
    layer, so a weak channel looks weak: black 0 to white at the layer's maximum (maps
    that go negative, a conv before its batch norm: mid-grey 0)."""
    values = maps.maps[:max_maps]
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if low >= 0:
        scaled = values / high if high > 0 else np.zeros_like(values)
    else:
        scaled = 0.5 + 0.5 * values / max(-low, high)
    tiles = np.rint(np.repeat(scaled[..., np.newaxis], 3, axis=-1) * 255).astype(np.uint8)
    return tile_grid(tiles, columns, factor, gap)


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 RGB (or grey) array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- live snapshots while training ---------------------------------------------------------


@dataclass
class Snapshot:
    """What the network saw at one point of training (see `write_snapshot`)."""

    epoch: int  # epochs finished: 0 = before training
    image: np.ndarray  # uint8 (H, W, C)
    probabilities: np.ndarray  # float32 (classes,): the network's answer for the image
    filters: Filters  # the first conv layer's kernels now
    initial_filters: Filters | None  # ... and before training (None if not recorded)
    first_maps: FeatureMaps  # the image through the first conv block (its activation)
    last_maps: FeatureMaps  # ... and through the last one


def read_snapshot(path: str | Path) -> Snapshot | None:
    """The snapshot at `path`, or None when there is none yet or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        colour = bool(arrays["colour"])
        layer = str(arrays["conv_layer"])
        initial = arrays.get("initial_kernel")
        return Snapshot(
            epoch=int(arrays["epoch"]),
            image=arrays["image"],
            probabilities=arrays["probabilities"],
            filters=kernel_filters(arrays["kernel"], layer, colour),
            initial_filters=None if initial is None else kernel_filters(initial, layer, colour),
            first_maps=sorted_maps(str(arrays["first_layer"]), str(arrays["first_kind"]),
                                   arrays["first_maps"]),
            last_maps=sorted_maps(str(arrays["last_layer"]), str(arrays["last_kind"]),
                                  arrays["last_maps"]),
        )
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
