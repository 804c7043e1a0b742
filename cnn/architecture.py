"""The network a configuration describes, worked out on paper: no Keras, no memory.

The Train page shows the layers and the parameter count on every change of the form, and
`validate` refuses a network too big to train on a shared laptop, before anything is
built: a model is never built inside the web server just to be measured. The rows mirror
`cnn.models.make_model` layer for layer; the tests check both agree for every preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnn.config import HyperParams
from cnn.errors import ConfigError

# A shared laptop must survive what one student starts. 10 M parameters is 40 MB of
# weights, 160 MB with Adam's state and the gradients — 80× the tutorial network and 20×
# the `strong` preset. 1.5 GB for one batch's activations (kept for the backward pass)
# keeps a training process well under the 2 GB we plan for beside the server.
MAX_PARAMETERS = 10_000_000
MAX_ACTIVATION_BYTES = 1_500_000_000
_BYTES_PER_VALUE = 4  # float32 (bfloat16 halves it, but training also keeps float32 copies)
_TRAINING_COPIES = 3  # forward activation + its gradient + a temporary, per value


@dataclass(frozen=True)
class PlannedLayer:
    """One layer of the network as planned: what `model.summary()` would print."""

    name: str
    kind: str  # the Keras layer class, e.g. "Conv2D"
    output_shape: tuple[int, ...]  # without the batch dimension
    parameters: int


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


def plan(params: HyperParams, image_shape: tuple[int, int, int],
         num_classes: int) -> list[PlannedLayer]:
    """The layers `cnn.models.make_model(params, image_shape, num_classes)` builds."""
    feature_map_sizes(params, image_shape)  # ConfigError when a map vanishes
    height, width, channels = image_shape
    rows = []
    shape = (height, width, channels)
    # Random pen widths: grey images only (cnn.models.uses_stroke_layers).
    stroke = params.augment_stroke and channels == 1
    augmentation = [
        ("random_flip", "RandomFlip", params.augment_flip),
        ("random_blur", "RandomGaussianBlur", stroke),
        ("random_brightness", "RandomBrightness", stroke),
        ("random_rotation", "RandomRotation", params.augment_rotation > 0),
        ("random_zoom", "RandomZoom", params.augment_zoom > 0),
        ("random_translation", "RandomTranslation", params.augment_shift > 0),
        ("scale_to_0_1", "Rescaling", True),
        ("stroke_ramp", "Rescaling", stroke),
        ("stroke_clip", "ReLU", stroke),
    ]
    rows += [PlannedLayer(name, kind, shape, 0) for name, kind, used in augmentation if used]
    for i, block in enumerate(params.conv_blocks, start=1):
        if params.padding == "valid":
            height, width = height - block.kernel_size + 1, width - block.kernel_size + 1
        weights = block.kernel_size ** 2 * channels * block.filters
        bias = 0 if params.batch_norm else block.filters
        channels = block.filters
        rows.append(PlannedLayer(f"conv{i}", "Conv2D", (height, width, channels),
                                 weights + bias))
        if params.batch_norm:
            # gamma, beta, moving mean and moving variance: Keras counts all four.
            rows.append(PlannedLayer(f"batch_norm{i}", "BatchNormalization",
                                     (height, width, channels), 4 * channels))
            rows.append(PlannedLayer(f"relu{i}", "ReLU", (height, width, channels), 0))
        if block.pool:
            height, width = height // 2, width // 2
            rows.append(PlannedLayer(f"pool{i}", "MaxPooling2D", (height, width, channels), 0))
    features = height * width * channels
    rows.append(PlannedLayer("flatten", "Flatten", (features,), 0))
    if params.dropout > 0:
        rows.append(PlannedLayer("dropout", "Dropout", (features,), 0))
    for i, units in enumerate(params.dense_units, start=1):
        rows.append(PlannedLayer(f"dense{i}", "Dense", (units,), features * units + units))
        features = units
        if params.dropout > 0:
            rows.append(PlannedLayer(f"dropout_{i}", "Dropout", (units,), 0))
    rows.append(PlannedLayer("classes", "Dense", (num_classes,),
                             features * num_classes + num_classes))
    return rows


def parameter_count(rows: list[PlannedLayer]) -> int:
    return sum(row.parameters for row in rows)


def activation_bytes(rows: list[PlannedLayer], batch_size: int) -> int:
    """Memory one training batch's activations take (forward values, gradients, temps)."""
    values = 0
    for row in rows:
        size = 1
        for dim in row.output_shape:
            size *= dim
        values += size
    return values * batch_size * _BYTES_PER_VALUE * _TRAINING_COPIES


def check_size(params: HyperParams, image_shape: tuple[int, int, int],
               num_classes: int) -> None:
    """ConfigError when the network is too big for a shared laptop (see the limits)."""
    rows = plan(params, image_shape, num_classes)
    total = parameter_count(rows)
    if total > MAX_PARAMETERS:
        biggest = max(rows, key=lambda r: r.parameters)
        raise ConfigError(
            f"This network has {total:,} parameters; at most {MAX_PARAMETERS:,} are allowed "
            f"so that training fits in a laptop's memory. The biggest layer is "
            f"{biggest.name} ({biggest.parameters:,}): add a pooling, or use fewer filters "
            "or dense units.")
    needed = activation_bytes(rows, params.batch_size)
    if needed > MAX_ACTIVATION_BYTES:
        fits = max(1, MAX_ACTIVATION_BYTES * params.batch_size // needed)
        raise ConfigError(
            f"A batch of {params.batch_size:,} images needs about {needed / 1e9:.1f} GB of "
            f"memory in this network (at most {MAX_ACTIVATION_BYTES / 1e9:.1f} GB): use a "
            f"batch size of at most {fits:,}, add a pooling or use fewer filters.")
