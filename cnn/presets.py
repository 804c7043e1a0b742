"""Presets: named sets of hyperparameters, as data applied over the defaults (the tutorial).

Also what a page or the CLI says about a configuration against its preset: which settings
differ, and the one-line summary of a run's settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cnn.config import ConvBlock, HyperParams
from cnn.errors import ConfigError

# What the efficient and strong presets share: "same" padding, a Dense(128) classifier with
# dropout, AdamW with warm-up + cosine decay, label smoothing, batch 128.
_REGULARISED_RECIPE: dict[str, Any] = {
    "padding": "same",
    "dense_units": [128],
    "dropout": 0.3,
    "optimizer": "adamw",
    "learning_rate": 3e-3,
    "weight_decay": 5e-4,
    "lr_schedule": "cosine",
    "label_smoothing": 0.1,
    "batch_size": 128,
}

PRESETS: dict[str, dict[str, Any]] = {
    # The Keras CIFAR-10 tutorial exactly: Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, Adam.
    "tutorial": {},
    # A classroom minute: a narrow net, big batches, two epochs on a 10,000-image subset.
    "fast": {
        "conv_blocks": [{"filters": 16, "kernel_size": 3, "pool": True},
                        {"filters": 32, "kernel_size": 3, "pool": True}],
        "dense_units": [64],
        "batch_size": 128,
        "learning_rate": 2e-3,
        "epochs": 2,
        "train_size": 10_000,
    },
    # Accuracy per second: "same" padding keeps the edges, AdamW with warm-up + cosine
    # decay, label smoothing, dropout, batch 128, bfloat16 where supported. Tuned on
    # Fashion-MNIST to reach 92 % test accuracy in seven epochs (benchmarks/bench_training.py).
    "efficient": {
        **_REGULARISED_RECIPE,
        "conv_blocks": [{"filters": 24, "kernel_size": 3, "pool": True},
                        {"filters": 48, "kernel_size": 3, "pool": True},
                        {"filters": 64, "kernel_size": 3, "pool": False}],
        "warmup_epochs": 0.5,
        "epochs": 7,
    },
    # Stronger but slower: the same recipe, wider, with batch norm, flip/shift augmentation
    # and 20 epochs. Flips are for photos: `for_dataset` drops them for digits and letters.
    "strong": {
        **_REGULARISED_RECIPE,
        "conv_blocks": [{"filters": 32, "kernel_size": 3, "pool": True},
                        {"filters": 64, "kernel_size": 3, "pool": True},
                        {"filters": 128, "kernel_size": 3, "pool": True}],
        "batch_norm": True,
        "warmup_epochs": 1.0,
        "epochs": 20,
        "augment_flip": True,
        "augment_shift": 0.1,
    },
    # Drawings people make (digits, MNIST, one's own drawn classes): trained on copies
    # turned, zoomed, shifted and drawn with other pen widths; "same" padding keeps strokes
    # at the edges and lets images as small as 8x8 through three poolings; dropout and a
    # small batch for datasets of a few dozen drawings. Chosen on digits drawn on the app's
    # canvas (benchmarks/bench_drawings.py).
    "drawings": {
        "conv_blocks": [{"filters": 32, "kernel_size": 3, "pool": True},
                        {"filters": 64, "kernel_size": 3, "pool": True},
                        {"filters": 64, "kernel_size": 3, "pool": True}],
        "padding": "same",
        "dense_units": [128],
        "dropout": 0.25,
        "batch_size": 32,
        "augment_rotation": 15.0,
        "augment_zoom": 0.15,
        "augment_shift": 0.1,
        "augment_stroke": True,
        "epochs": 30,
    },
}
DESCRIPTIONS = {
    "tutorial": "The Keras CIFAR-10 tutorial's network and settings, unchanged.",
    "fast": "Small and quick: two epochs on at most 10,000 images — under a minute on a "
    "laptop for the datasets here.",
    "efficient": "Most accuracy per second: 'same' padding, AdamW with warm-up and cosine "
    "decay, label smoothing, dropout. Seven epochs.",
    "strong": "Wider, with batch norm, dropout and shift augmentation (flips too, for "
    "photos), 20 epochs. Slowest, most accurate on photos (CIFAR-10).",
    "drawings": "For drawings (digits, your own drawn classes): trains on copies turned, "
    "zoomed, shifted and drawn with other pen widths, so it copes with how people draw.",
}
DEFAULT = "tutorial"


def preset(name: str, **overrides: Any) -> HyperParams:
    """The preset's hyperparameters with `overrides` (None values are ignored) applied."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    changes = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return HyperParams.from_dict(changes)


def for_dataset(name: str, dataset: str, mirror_safe: bool, **overrides: Any) -> HyperParams:
    """The preset as it should be used on `dataset`: flips only where a mirrored image is
    still the same class (photos, clothes), never for digits or drawings."""
    params = preset(name, dataset=dataset, **overrides)
    if params.augment_flip and not mirror_safe and "augment_flip" not in overrides:
        params = params.replace(augment_flip=False)
    return params


# How the "changed from the preset" line names fields.
LABELS = {
    "conv_blocks": "conv blocks", "padding": "padding", "batch_norm": "batch norm",
    "dropout": "dropout", "dense_units": "dense layers", "optimizer": "optimizer",
    "learning_rate": "learning rate", "weight_decay": "weight decay",
    "lr_schedule": "schedule", "warmup_epochs": "warm-up", "label_smoothing": "label smoothing",
    "batch_size": "batch size", "epochs": "epochs", "augment_flip": "flips",
    "augment_shift": "shifts", "augment_rotation": "rotations", "augment_zoom": "zoom",
    "augment_stroke": "pen widths", "validation_split": "validation split",
    "train_size": "training images", "seed": "seed", "precision": "precision",
}


def changes(params: HyperParams, base: HyperParams) -> dict[str, Any]:
    """{field: value} of the settings of `params` that differ from `base` (dataset aside)."""
    mine, theirs = params.to_dict(), base.to_dict()
    return {k: v for k, v in mine.items() if k != "dataset" and v != theirs.get(k)}


def changed_labels(params: HyperParams, base: HyperParams) -> list[str]:
    """The changes as a student reads them: ["epochs", "learning rate"]."""
    return [LABELS.get(k, k.replace("_", " ")) for k in changes(params, base)]


def closest(params: HyperParams) -> tuple[str, dict[str, Any]]:
    """The preset `params` differs least from, and the differences."""
    scored = []
    for name in PRESETS:
        diff = changes(params, preset(name, dataset=params.dataset))
        scored.append((len(diff), name != DEFAULT, name, diff))
    _, _, name, diff = min(scored)
    return name, diff


def blocks_text(blocks: list[ConvBlock]) -> str:
    return " → ".join(f"{b.filters}" + ("+pool" if b.pool else "") for b in blocks)


def settings_line(params: HyperParams) -> str:
    """One line summing up a run's settings, e.g. "Conv 32+pool → 64 · dense 64 · adam at
    learning rate 0.001 · batch 64 · 10 epoch(s)"."""
    dense = ", ".join(map(str, params.dense_units)) or "none"
    return (f"Conv {blocks_text(params.conv_blocks)} · dense {dense} · {params.optimizer} at "
            f"learning rate {params.learning_rate:g} · batch {params.batch_size} · "
            f"{params.epochs} epoch(s)"
            + (f" · {params.train_size:,} training images" if params.train_size else ""))


def describe_value(key: str, value: Any) -> Any:
    """A setting's value for tables: blocks and lists as readable text, None as "all"."""
    if key == "conv_blocks":
        return " → ".join(f"{b['filters']}×{b['kernel_size']}²{'+pool' if b['pool'] else ''}"
                          for b in (dataclasses.asdict(b) if isinstance(b, ConvBlock) else b
                                    for b in value))
    if key == "dense_units":
        return " → ".join(map(str, value)) or "none"
    if value is None:
        return "all"
    return value
