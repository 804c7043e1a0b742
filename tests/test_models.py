import keras
import numpy as np
import pytest

from cnn.config import ConvBlock, HyperParams
from cnn.presets import preset
from cnn.architecture import parameter_count, plan
from cnn.models import compile_model, layer_rows, make_model


def _conv_params(c_in, filters, k, bias=True):
    return k * k * c_in * filters + (filters if bias else 0)


def test_tutorial_summary_matches_a_hand_count():
    rows = plan(HyperParams(precision="float32"), (32, 32, 3), 10)
    total = parameter_count(rows)
    by_name = {r.name: r for r in rows}
    assert by_name["conv1"].output_shape == (30, 30, 32)
    assert by_name["pool2"].output_shape == (6, 6, 64)
    assert by_name["flatten"].output_shape == (4 * 4 * 64,)
    expected = (_conv_params(3, 32, 3) + _conv_params(32, 64, 3) + _conv_params(64, 64, 3)
                + (1024 * 64 + 64) + (64 * 10 + 10))
    assert total == expected == 122_570  # the Keras tutorial's published count


def test_batch_norm_and_dropout_layers_appear_in_order():
    params = HyperParams(conv_blocks=[ConvBlock(8, 3, True)], batch_norm=True, dropout=0.25,
                         dense_units=[16], precision="float32")
    kinds = [kind for _, kind, _, _ in layer_rows(make_model(params, (28, 28, 1), 10))]
    assert kinds == ["Rescaling", "Conv2D", "BatchNormalization", "ReLU", "MaxPooling2D",
                     "Flatten", "Dropout", "Dense", "Dropout", "Dense"]


def test_model_takes_raw_uint8_pixels_and_outputs_probabilities():
    model = make_model(preset("fast", precision="float32"), (28, 28, 1), 10)
    x = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), dtype=np.uint8)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    # The scaling is inside the model: the Rescaling layer maps 255 to exactly 1.
    scale = model.get_layer("scale_to_0_1")
    assert float(scale(np.array([[255.0]]))[0, 0]) == pytest.approx(1.0)


def test_bfloat16_keeps_the_output_float32():
    model = make_model(HyperParams(precision="mixed_bfloat16"), (32, 32, 3), 10)
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("classes").compute_dtype == "float32"


@pytest.mark.parametrize("params", [
    HyperParams(optimizer="sgd", weight_decay=1e-4, precision="float32"),
    HyperParams(optimizer="adamw", label_smoothing=0.1, precision="float32"),
    HyperParams(optimizer="rmsprop", augment_flip=True, augment_shift=0.1, precision="float32"),
])
def test_every_optimizer_and_loss_trains_a_step(params):
    params = params.replace(conv_blocks=[{"filters": 4, "kernel_size": 3, "pool": True}],
                            dense_units=[8])
    model = compile_model(make_model(params, (12, 12, 1), 3), params)
    x = np.random.default_rng(0).integers(0, 256, (8, 12, 12, 1), dtype=np.uint8)
    y = np.arange(8) % 3
    if params.label_smoothing:
        y = keras.utils.to_categorical(y, 3)
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert type(model.optimizer).__name__.lower() == params.optimizer
