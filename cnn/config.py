"""Hyperparameters: one dataclass that drives the form, the CLI, the saved run and the tests.

Each field declares its label, help and limits once (`Setting`, in the field's metadata);
`HyperParams.validate` checks them, the Train page's widgets and the CLI's flags are made
from them. Messages are written for a student. Presets are data (`cnn.presets`).
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
# mixed_float16 is for GPUs without bfloat16 (loss scaling is added for it).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")

INT, FLOAT, BOOL, CHOICE = "int", "float", "bool", "choice"


@dataclass(frozen=True)
class Setting:
    """What the form, the CLI and `validate` need to know about one field."""

    label: str  # as a student reads it: "Learning rate"
    kind: str  # INT, FLOAT, BOOL or CHOICE
    help: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the limit itself is not allowed
    high_open: bool = False
    choices: tuple[str, ...] = ()
    step: float | None = None  # the form's step
    optional: bool = False  # None is allowed (e.g. "all training images")
    widget_label: str = ""  # a shorter label where the form's context says the rest

    @property
    def short_label(self) -> str:
        return self.widget_label or self.label

    def check(self, value: Any, label: str | None = None,
              error: type[Exception] = ConfigError) -> None:
        """Raise `error` with a student-readable message if `value` does not fit."""
        label = label or self.label
        if value is None and self.optional:
            return
        if self.kind == BOOL:
            if not isinstance(value, bool):
                raise error(f"{label} is on or off (true or false), not {_shown(value)}.")
        elif self.kind == CHOICE:
            if not isinstance(value, str) or value not in self.choices:
                raise error(f"{label} must be one of {', '.join(self.choices)} "
                            f"(got {_shown(value)}).")
        elif self.kind == INT:
            if isinstance(value, bool) or not isinstance(value, int):
                raise error(f"{label} must be a whole number, not {_shown(value)}.")
            if not self.low <= value <= self.high:
                raise error(f"{label} must be between {self.low:,} and {self.high:,} "
                            f"(got {value:,}).")
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise error(f"{label} must be a number, not {_shown(value)}.")
            too_low = value <= self.low if self.low_open else value < self.low
            too_high = value >= self.high if self.high_open else value > self.high
            if too_low or too_high:
                lo = "above" if self.low_open else "at least"
                hi = "below" if self.high_open else "at most"
                raise error(f"{label} must be {lo} {self.low:g} and {hi} {self.high:g} "
                            f"(got {value:g}).")


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, bool, type(None))) else repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def setting(default: Any, label: str, kind: str, help: str = "", **limits: Any):
    """A dataclass field that carries its Setting."""
    spec = Setting(label, kind, help, **limits)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"setting": spec})
    return field(default=default, metadata={"setting": spec})


def spec(name: str, cls: type | None = None) -> Setting:
    """The Setting of field `name` (of HyperParams, or of `cls`)."""
    for f in dataclasses.fields(cls or HyperParams):
        if f.name == name:
            return f.metadata["setting"]
    raise KeyError(name)


MAX_CONV_BLOCKS = 12
MAX_DENSE_LAYERS = 8


@dataclass
class ConvBlock:
    """One Conv2D (+ optional batch norm) + ReLU, optionally followed by 2×2 max-pooling."""

    filters: int = setting(32, "Filters", INT, "Feature maps this convolution learns.",
                           low=1, high=1024)
    kernel_size: int = setting(3, "Kernel size", INT, "Side of the square kernel.",
                               low=1, high=15)
    pool: bool = setting(True, "Max-pool", BOOL, "2×2 max-pooling after the convolution "
                         "halves height and width.")


def _tutorial_blocks() -> list[ConvBlock]:
    return [ConvBlock(32, 3, True), ConvBlock(64, 3, True), ConvBlock(64, 3, False)]


LEARNING_RATE = Setting(
    "Learning rate", FLOAT, "How big a step the optimizer takes. Too big: the loss jumps "
    "around; too small: it learns slowly.", low=0.0, high=10.0, low_open=True)


def check_learning_rate(value: Any, error: type[Exception] = ConfigError) -> None:
    """The one learning-rate rule, for the form, a live change and the worker alike."""
    LEARNING_RATE.check(value, error=error)


@dataclass
class HyperParams:
    """Everything that defines a training run. Defaults are the Keras CIFAR-10 tutorial."""

    dataset: str = "cifar10"  # a dataset name (cnn.datasets)
    # Architecture
    conv_blocks: list[ConvBlock] = field(default_factory=_tutorial_blocks)
    padding: str = setting("valid", "Padding", CHOICE, "valid: each convolution trims the "
                           "border (kernel − 1 pixels); same: pads it so the size stays.",
                           choices=PADDINGS)
    batch_norm: bool = setting(False, "Batch normalisation", BOOL,
                               "BatchNormalization after each convolution.")
    dropout: float = setting(0.0, "Dropout", FLOAT, "Share of activations switched off at "
                             "random while training.", low=0.0, high=0.9, step=0.05)
    dense_units: list[int] = setting([64], "Dense layers", INT, "Units of the hidden dense "
                                     "layers after flattening, e.g. 128, 64. The output layer "
                                     "(one unit per class) is always added.", low=1, high=8192)
    # Optimisation
    optimizer: str = setting("adam", "Optimizer", CHOICE, "How the weights are changed "
                             "from the gradients.", choices=OPTIMIZERS)
    learning_rate: float = field(default=1e-3, metadata={"setting": LEARNING_RATE})
    weight_decay: float = setting(0.0, "Weight decay", FLOAT, "Pulls weights towards 0 "
                                  "(adamw and sgd only).", low=0.0, high=1.0, step=1e-4)
    lr_schedule: str = setting("constant", "Learning-rate schedule", CHOICE, "cosine: the "
                               "learning rate glides down to 0 by the end.", choices=SCHEDULES)
    warmup_epochs: float = setting(0.0, "Warm-up (epochs)", FLOAT, "Start from learning rate "
                                   "0 and grow to the full rate.", low=0.0, high=1000.0,
                                   step=0.5)
    label_smoothing: float = setting(0.0, "Label smoothing", FLOAT, "Aim for 90% sure "
                                     "instead of 100%: less over-confidence.", low=0.0,
                                     high=0.5, high_open=True, step=0.05)
    batch_size: int = setting(64, "Batch size", INT, "Images per step: the weights change "
                              "once per batch.", low=1, high=8192)
    epochs: int = setting(10, "Epochs", INT, "How many times the network sees every "
                          "training image.", low=1, high=1000)
    # Data
    augment_flip: bool = setting(False, "Random horizontal flips", BOOL, "Mirror training "
                                 "images at random (not for digits or letters!).")
    augment_shift: float = setting(0.0, "Random shifts", FLOAT, "Move training images by up "
                                   "to this share of their size.", low=0.0, high=0.5,
                                   step=0.05)
    augment_rotation: float = setting(0.0, "Random rotations", FLOAT, "Turn training images "
                                      "by up to this many degrees either way.", low=0.0,
                                      high=90.0, step=5.0)
    augment_zoom: float = setting(0.0, "Random zoom", FLOAT, "Zoom training images in or out "
                                  "by up to this share of their size.", low=0.0, high=0.5,
                                  step=0.05)
    augment_stroke: bool = setting(False, "Random pen widths", BOOL, "Grey images only: blur "
                                   "and brighten or darken training images at random, then "
                                   "make every image crisp again (also when classifying), so "
                                   "strokes come out thinner or thicker, as different pens "
                                   "draw them. For drawings.")
    validation_split: float = setting(0.1, "Validation split", FLOAT, "Share of the training "
                                      "images held back to check on after each epoch.",
                                      low=0.0, high=0.5, step=0.05)
    train_size: int | None = setting(None, "Training subset size", INT, "Train on only this "
                                     "many images (quick runs).", low=1, high=10_000_000,
                                     optional=True, step=100, widget_label="Training images")
    time_limit: float | None = setting(None, "Time limit", FLOAT, "Seconds of training "
                                       "after which it stops by itself and tests what it "
                                       "learnt, as Stop does.", low=1.0, high=86_400.0,
                                       optional=True, step=10.0,
                                       widget_label="Time limit (seconds)")
    seed: int = setting(42, "Seed", INT, "Same seed, same run.", low=0, high=2**31 - 1)
    precision: str = setting("auto", "Precision", CHOICE, "auto: bfloat16 maths where the "
                             "hardware is fast at it, else float32.", choices=PRECISIONS)

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Any) -> HyperParams:
        """From JSON-like data; ConfigError (never a TypeError) for anything malformed.
        Values are type-checked by `validate`, not here."""
        if not isinstance(data, dict):
            raise ConfigError(f"Settings must be a JSON object of name: value pairs, not "
                              f"{_kind_of(data)}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown setting(s): {', '.join(unknown)}.")
        values = dict(data)
        if "conv_blocks" in values:
            blocks = values["conv_blocks"]
            if not isinstance(blocks, list):
                raise ConfigError(f"conv_blocks must be a list of blocks like "
                                  f'{{"filters": 32, "kernel_size": 3, "pool": true}}, not '
                                  f"{_kind_of(blocks)}.")
            values["conv_blocks"] = [b if isinstance(b, ConvBlock) else _conv_block(b, i)
                                     for i, b in enumerate(blocks, start=1)]
        if "dense_units" in values:
            units = values["dense_units"]
            if not isinstance(units, list):
                raise ConfigError(f"dense_units must be a list of whole numbers like "
                                  f"[128, 64], not {_kind_of(units)}.")
            values["dense_units"] = list(units)
        if "dataset" in values and not isinstance(values["dataset"], str):
            raise ConfigError(f"dataset must be a dataset's name, not {_kind_of(values['dataset'])}.")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> HyperParams:
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ConfigError("The settings are nested far too deeply to be settings.") \
                from None
        except ValueError as error:
            raise ConfigError(f"The settings are not valid JSON ({error}).") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> HyperParams:
        """A copy with some settings changed (validated only when `validate` is called)."""
        return HyperParams.from_dict({**self.to_dict(), **changes})

    # --- validation ----------------------------------------------------------------
    def validate(self, image_shape: tuple[int, int, int] | None = None,
                 num_classes: int | None = None) -> HyperParams:
        """Raise ConfigError with a student-readable message; return self when all is well.

        With `image_shape` (height, width, channels) the architecture is also checked
        against the images it will see, and with `num_classes` too its size against what
        a shared laptop can train (`cnn.architecture.check_size`).
        """
        for f in dataclasses.fields(self):
            setting_ = f.metadata.get("setting")
            if setting_ is None or f.name == "dense_units":
                continue
            setting_.check(getattr(self, f.name))
        if self.warmup_epochs > self.epochs:
            raise ConfigError(f"Warm-up ({self.warmup_epochs:g} epochs) cannot be longer than "
                              f"the training ({self.epochs} epochs).")
        if not self.conv_blocks:
            raise ConfigError("A convolutional network needs at least one conv block.")
        if len(self.conv_blocks) > MAX_CONV_BLOCKS:
            raise ConfigError(f"At most {MAX_CONV_BLOCKS} conv blocks, please.")
        for i, block in enumerate(self.conv_blocks, start=1):
            for f in dataclasses.fields(ConvBlock):
                f.metadata["setting"].check(getattr(block, f.name),
                                            f"Conv block {i}: {f.metadata['setting'].label}")
        if len(self.dense_units) > MAX_DENSE_LAYERS:
            raise ConfigError(f"At most {MAX_DENSE_LAYERS} dense layers, please.")
        for i, units in enumerate(self.dense_units, start=1):
            spec("dense_units").check(units, f"Dense layer {i}: units")
        if image_shape is not None:
            from cnn import architecture  # the plan of the network, computed without Keras

            architecture.feature_map_sizes(self, image_shape)
            if num_classes is not None:
                architecture.check_size(self, image_shape, num_classes)
        return self


def _conv_block(data: Any, index: int) -> ConvBlock:
    if not isinstance(data, dict):
        raise ConfigError(f"Conv block {index} must be an object like "
                          f'{{"filters": 32, "kernel_size": 3, "pool": true}}, not '
                          f"{_kind_of(data)}.")
    known = {f.name for f in dataclasses.fields(ConvBlock)}
    unknown = sorted(str(k) for k in set(data) - known)
    if unknown:
        raise ConfigError(f"Unknown conv block setting(s): {', '.join(unknown)}.")
    return ConvBlock(**data)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    return {list: "a list", dict: "an object", str: f"the text {_shown(value)}",
            bool: _shown(value)}.get(type(value), f"the number {_shown(value)}"
                                     if isinstance(value, (int, float)) else repr(value))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number")
