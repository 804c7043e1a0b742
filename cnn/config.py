"""Hyperparameters: one dataclass that drives the form, the CLI, the saved run and the tests.

`HyperParams.validate(image_shape)` is the one place that checks them; its messages are
written for a student. Presets are plain data applied over the defaults.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from cnn.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
PADDINGS = ("valid", "same")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("auto", "float32", "mixed_bfloat16")


@dataclass
class ConvBlock:
    """One Conv2D (+ optional batch norm) + ReLU, optionally followed by 2×2 max-pooling."""

    filters: int = 32  # feature maps this convolution learns
    kernel_size: int = 3  # side of the square kernel
    pool: bool = True  # 2×2 max-pooling after the convolution halves height and width


def _tutorial_blocks() -> list[ConvBlock]:
    return [ConvBlock(32, 3, True), ConvBlock(64, 3, True), ConvBlock(64, 3, False)]


@dataclass
class HyperParams:
    """Everything that defines a training run. Defaults are the Keras CIFAR-10 tutorial."""

    dataset: str = "cifar10"  # a key of cnn.datasets.DATASETS
    # Architecture
    conv_blocks: list[ConvBlock] = field(default_factory=_tutorial_blocks)
    padding: str = "valid"  # "valid" shrinks each conv output by kernel-1; "same" keeps the size
    batch_norm: bool = False  # BatchNormalization after each convolution
    dropout: float = 0.0  # dropout rate after the convolutions and after each dense layer
    dense_units: list[int] = field(default_factory=lambda: [64])  # hidden dense layers
    # Optimisation
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (adamw, sgd)
    lr_schedule: str = "constant"  # "cosine" decays to 0 by the last batch
    warmup_epochs: float = 0.0  # linear warm-up from 0 to the peak, in epochs
    label_smoothing: float = 0.0
    batch_size: int = 64
    epochs: int = 10
    # Data
    augment_flip: bool = False  # random horizontal flips while training
    augment_shift: float = 0.0  # random shifts, as a fraction of the image size
    validation_split: float = 0.1  # fraction of the training set held out for validation
    train_size: int | None = None  # use only this many training images (quick runs)
    seed: int = 42
    precision: str = "auto"  # "auto": bfloat16 compute where the hardware supports it

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HyperParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}.")
        values = dict(data)
        if "conv_blocks" in values:
            values["conv_blocks"] = [
                b if isinstance(b, ConvBlock) else _conv_block_from_dict(b)
                for b in values["conv_blocks"]
            ]
        if "dense_units" in values:
            values["dense_units"] = list(values["dense_units"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> HyperParams:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> HyperParams:
        """A copy with some settings changed (validated only when `validate` is called)."""
        return HyperParams.from_dict({**self.to_dict(), **changes})

    # --- validation ----------------------------------------------------------------
    def validate(self, image_shape: tuple[int, int, int] | None = None) -> HyperParams:
        """Raise ConfigError with a student-readable message; return self when all is well.

        With `image_shape` (height, width, channels) the architecture is also checked
        against the images it will see.
        """
        _check_int("Batch size", self.batch_size, 1, 65536)
        _check_int("Epochs", self.epochs, 1, 1000)
        _check_int("Seed", self.seed, 0, 2**31 - 1)
        if self.train_size is not None:
            _check_int("Training subset size", self.train_size, 1, 10_000_000)
        _check_float("Learning rate", self.learning_rate, 0.0, 10.0, low_open=True)
        _check_float("Weight decay", self.weight_decay, 0.0, 1.0)
        _check_float("Warm-up", self.warmup_epochs, 0.0, float(self.epochs))
        _check_float("Label smoothing", self.label_smoothing, 0.0, 0.5, high_open=True)
        _check_float("Dropout", self.dropout, 0.0, 0.9)
        _check_float("Validation split", self.validation_split, 0.0, 0.5)
        _check_float("Shift augmentation", self.augment_shift, 0.0, 0.5)
        _check_choice("Optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("Padding", self.padding, PADDINGS)
        _check_choice("Learning-rate schedule", self.lr_schedule, SCHEDULES)
        _check_choice("Precision", self.precision, PRECISIONS)
        if not isinstance(self.augment_flip, bool) or not isinstance(self.batch_norm, bool):
            raise ConfigError("Flip augmentation and batch norm are on/off settings.")
        if not self.conv_blocks:
            raise ConfigError("A convolutional network needs at least one conv block.")
        if len(self.conv_blocks) > 12:
            raise ConfigError("At most 12 conv blocks, please.")
        for i, block in enumerate(self.conv_blocks, start=1):
            _check_int(f"Conv block {i}: filters", block.filters, 1, 1024)
            _check_int(f"Conv block {i}: kernel size", block.kernel_size, 1, 15)
            if not isinstance(block.pool, bool):
                raise ConfigError(f"Conv block {i}: pooling is on or off.")
        if len(self.dense_units) > 8:
            raise ConfigError("At most 8 dense layers, please.")
        for i, units in enumerate(self.dense_units, start=1):
            _check_int(f"Dense layer {i}: units", units, 1, 8192)
        if image_shape is not None:
            feature_map_sizes(self, image_shape)
        return self


def feature_map_sizes(params: HyperParams, image_shape: tuple[int, int, int]) -> list[int]:
    """Side length of the feature maps after each conv block; ConfigError if one vanishes."""
    height, width = image_shape[0], image_shape[1]
    side = min(height, width)
    sizes = []
    poolings = 0
    for i, block in enumerate(params.conv_blocks, start=1):
        if params.padding == "valid":
            if side < block.kernel_size:
                raise ConfigError(
                    f"Conv block {i}: the feature maps are only {side}×{side} here, smaller "
                    f"than its {block.kernel_size}×{block.kernel_size} kernel. Remove a "
                    "block, turn off a pooling, use a smaller kernel or padding 'same'."
                )
            side = side - block.kernel_size + 1
        if block.pool:
            poolings += 1
            if side < 2:
                most = _max_poolings(params, image_shape)
                raise ConfigError(
                    f"After {poolings} poolings a {height}×{width} image is "
                    f"{max(side // 2, 0)}×{max(side // 2, 0)} — use at most {most}."
                )
            side //= 2
        sizes.append(side)
    return sizes


def _max_poolings(params: HyperParams, image_shape: tuple[int, int, int]) -> int:
    """How many of the blocks' poolings fit before the maps vanish (for the error text)."""
    side = min(image_shape[0], image_shape[1])
    count = 0
    for block in params.conv_blocks:
        if params.padding == "valid":
            side = side - block.kernel_size + 1
        if block.pool:
            if side < 2:
                break
            side //= 2
            count += 1
    return count


def _conv_block_from_dict(data: dict[str, Any]) -> ConvBlock:
    known = {f.name for f in dataclasses.fields(ConvBlock)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown conv block setting(s): {', '.join(unknown)}.")
    return ConvBlock(**data)


def _check_int(label: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{label} must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise ConfigError(f"{label} must be between {low:,} and {high:,} (got {value:,}).")


def _check_float(
    label: str,
    value: Any,
    low: float,
    high: float,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{label} must be a number, not {value!r}.")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        lo = "above" if low_open else "at least"
        hi = "below" if high_open else "at most"
        raise ConfigError(f"{label} must be {lo} {low:g} and {hi} {high:g} (got {value:g}).")


def _check_choice(label: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{label} must be one of {', '.join(choices)} (got {value!r}).")


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

# Presets are data: changes applied over the defaults (the tutorial).
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
    # and 20 epochs.
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
}
PRESET_DESCRIPTIONS = {
    "tutorial": "The Keras CIFAR-10 tutorial's network and settings, unchanged.",
    "fast": "Small and quick: two epochs on 10,000 images — about a minute on a laptop.",
    "efficient": "Most accuracy per second: 'same' padding, AdamW with warm-up and cosine "
    "decay, label smoothing, dropout. Seven epochs.",
    "strong": "Wider, with batch norm, dropout and flip/shift augmentation, 20 epochs. "
    "Slowest, most accurate on photos (CIFAR-10).",
}
DEFAULT_PRESET = "tutorial"


def preset(name: str, **overrides: Any) -> HyperParams:
    """The preset's hyperparameters with `overrides` (None values are ignored) applied."""
    if name not in PRESETS:
        raise ConfigError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
    changes = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return HyperParams.from_dict(changes)
