"""The network: one builder, its compile step, and its summary as data.

Models take raw uint8 pixels; a Rescaling layer scales them to [0, 1], so a saved model
classifies raw images anywhere and the training data stays uint8 in memory (4× smaller).
"""

from __future__ import annotations

from cnn import runtime
from cnn.config import HyperParams

runtime.start_tensorflow()  # before Keras imports it, so its start-up chatter is hidden
import keras  # noqa: E402
from keras import layers  # noqa: E402


def dtype_policy(params: HyperParams) -> str:
    """The Keras dtype policy for the hidden layers: "auto" is decided by the machine
    (`cnn.runtime.auto_policy`: bfloat16 where it is fast, float16 on older GPUs)."""
    if params.precision == "auto":
        return runtime.auto_policy()
    return params.precision


# Random pen widths (augment_stroke), measured on digits drawn on the app's canvas
# (benchmarks/bench_drawings.py): blur most training images (sigma per batch), shift their
# brightness by up to a quarter of the range, and cut at 0.4 with a ramp a quarter wide.
STROKE_BLUR_SHARE = 0.8
STROKE_BLUR_SIGMA = (0.3, 1.5)
STROKE_BRIGHTNESS = 0.25
STROKE_CUT = 0.4
STROKE_STEEPNESS = 4.0


def uses_stroke_layers(params: HyperParams, image_shape: tuple[int, ...]) -> bool:
    """Random pen widths are for grey images (drawings); colour photos are left alone."""
    return params.augment_stroke and image_shape[-1] == 1


def make_model(
    params: HyperParams, image_shape: tuple[int, int, int], num_classes: int
) -> keras.Model:
    """The Sequential CNN that `params` describes, for uint8 images of `image_shape`."""
    policy = dtype_policy(params)
    model = keras.Sequential(name="cnn")
    model.add(keras.Input(shape=image_shape, dtype="uint8", name="pixels"))
    # Augmentation only acts while training; it is a no-op at inference. All of it is
    # Keras's own layers, so a saved model still loads in safe mode.
    stroke = uses_stroke_layers(params, image_shape)
    if params.augment_flip:
        model.add(layers.RandomFlip("horizontal", seed=params.seed, dtype="float32",
                                    name="random_flip"))
    if stroke:
        # Pen widths: a random blur and a random brightness shift here, then (below) a
        # fixed steep ramp that makes the image crisp again. Where the ramp cuts a blurred
        # stroke depends on the shift: a brighter image gives thicker strokes, a darker one
        # thinner, as a thicker or thinner pen would.
        model.add(layers.RandomGaussianBlur(STROKE_BLUR_SHARE, kernel_size=5,
                                            sigma=STROKE_BLUR_SIGMA, seed=params.seed,
                                            dtype="float32", name="random_blur"))
        model.add(layers.RandomBrightness(STROKE_BRIGHTNESS, value_range=(0, 255),
                                          seed=params.seed, dtype="float32",
                                          name="random_brightness"))
    if params.augment_rotation > 0:
        model.add(layers.RandomRotation(params.augment_rotation / 360, fill_mode="constant",
                                        seed=params.seed, dtype="float32",
                                        name="random_rotation"))
    if params.augment_zoom > 0:
        model.add(layers.RandomZoom(params.augment_zoom, fill_mode="constant",
                                    seed=params.seed, dtype="float32", name="random_zoom"))
    if params.augment_shift > 0:
        shift = params.augment_shift
        model.add(layers.RandomTranslation(shift, shift, fill_mode="constant",
                                           seed=params.seed, dtype="float32",
                                           name="random_translation"))
    model.add(layers.Rescaling(1.0 / 255, name="scale_to_0_1", dtype=policy))
    if stroke:
        # The fixed ramp, in training and when classifying alike: 0 up to STROKE_CUT,
        # 1 from STROKE_CUT + 1 / STROKE_STEEPNESS.
        model.add(layers.Rescaling(STROKE_STEEPNESS, offset=-STROKE_STEEPNESS * STROKE_CUT,
                                   name="stroke_ramp", dtype=policy))
        model.add(layers.ReLU(max_value=1.0, name="stroke_clip", dtype=policy))
    for i, block in enumerate(params.conv_blocks, start=1):
        # With batch norm the conv bias is redundant (BN adds its own shift).
        model.add(layers.Conv2D(
            block.filters, block.kernel_size, padding=params.padding,
            activation=None if params.batch_norm else "relu",
            use_bias=not params.batch_norm, name=f"conv{i}", dtype=policy,
        ))
        if params.batch_norm:
            model.add(layers.BatchNormalization(name=f"batch_norm{i}", dtype=policy))
            model.add(layers.ReLU(name=f"relu{i}", dtype=policy))
        if block.pool:
            model.add(layers.MaxPooling2D(name=f"pool{i}", dtype=policy))
    model.add(layers.Flatten(name="flatten", dtype=policy))
    if params.dropout > 0:
        model.add(layers.Dropout(params.dropout, seed=params.seed, dtype=policy,
                                 name="dropout"))
    for i, units in enumerate(params.dense_units, start=1):
        model.add(layers.Dense(units, activation="relu", name=f"dense{i}", dtype=policy))
        if params.dropout > 0:
            model.add(layers.Dropout(params.dropout, seed=params.seed + i, dtype=policy,
                                     name=f"dropout_{i}"))
    # The output stays float32 so softmax and the loss keep full precision.
    model.add(layers.Dense(num_classes, activation="softmax", name="classes", dtype="float32"))
    return model


def uses_one_hot_labels(params: HyperParams) -> bool:
    """Label smoothing needs one-hot targets (Keras's sparse loss has no smoothing)."""
    return params.label_smoothing > 0


def make_optimizer(params: HyperParams) -> keras.optimizers.Optimizer:
    """The optimizer at the peak learning rate; the schedule is applied by RunController."""
    lr = params.learning_rate
    if params.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=params.weight_decay)
    if params.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True,
                                    weight_decay=params.weight_decay or None)
    if params.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    return keras.optimizers.Adam(lr)


def compile_model(model: keras.Model, params: HyperParams,
                  steps_per_execution: int = 1) -> keras.Model:
    """Compile as the tutorial does: cross-entropy and accuracy. `steps_per_execution` > 1
    runs several batches per call into TensorFlow (less Python overhead per batch)."""
    if uses_one_hot_labels(params):
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=params.label_smoothing)
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
    optimizer = make_optimizer(params)
    if dtype_policy(params) == "mixed_float16":
        # float16 gradients underflow without loss scaling (bfloat16 has float32's range).
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"],
                  steps_per_execution=steps_per_execution)
    return model


def layer_rows(model: keras.Model) -> list[tuple[str, str, tuple, int]]:
    """(name, Keras class, output shape without the batch, parameters) of each layer."""
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape[1:]),
             layer.count_params()) for layer in model.layers]
