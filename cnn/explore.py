"""Looking at a dataset before training: samples per class, class balance, pixel statistics."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def samples_per_class(labels: np.ndarray, per_class: int, seed: int = 0) -> dict[int, np.ndarray]:
    """Up to `per_class` random indices of each class present in `labels` (reproducible)."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels).ravel()
    picks = {}
    for label in np.unique(labels):
        indices = np.flatnonzero(labels == label)
        picks[int(label)] = np.sort(rng.choice(indices, min(per_class, len(indices)),
                                               replace=False))
    return picks


def class_counts(labels: np.ndarray, class_names: Sequence[str]) -> list[int]:
    """Images per class, in class order (0 for a class with none)."""
    return np.bincount(np.asarray(labels).ravel().astype(int),
                       minlength=len(class_names)).tolist()


def pixel_stats(images: np.ndarray, sample: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Min/max/mean/std of the raw uint8 pixels and of the same pixels scaled to [0, 1]
    (what the model's Rescaling layer does), over a random sample of images."""
    rng = np.random.default_rng(seed)
    chosen = images if len(images) <= sample else images[rng.choice(len(images), sample,
                                                                    replace=False)]
    raw = chosen.astype(np.float64)
    scaled = raw / 255.0
    describe = lambda a: {"min": float(a.min()), "max": float(a.max()),  # noqa: E731
                          "mean": float(a.mean()), "std": float(a.std())}
    return {"raw": {**describe(raw), "dtype": str(images.dtype)},
            "scaled": {**describe(scaled), "dtype": "float32"}}


def mosaic(images: np.ndarray, scale: int = 1, gap: int = 2, columns: int | None = None,
           background: int = 255) -> np.ndarray:
    """Images (N, H, W, C) side by side in a grid, each enlarged `scale`× by pixel repetition
    (small images stay crisp on a projector); returns (rows·H', cols·W', C) uint8."""
    images = np.asarray(images)
    n, h, w, c = images.shape
    columns = columns or n
    rows = max(1, -(-n // columns))
    big_h, big_w = h * scale, w * scale
    out = np.full((rows * big_h + (rows - 1) * gap, columns * big_w + (columns - 1) * gap, c),
                  background, dtype=np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, columns)
        top, left = r * (big_h + gap), col * (big_w + gap)
        out[top:top + big_h, left:left + big_w] = image.repeat(scale, 0).repeat(scale, 1)
    return out
