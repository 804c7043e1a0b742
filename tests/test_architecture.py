"""The network planned on paper (cnn.architecture) against the one Keras builds (the oracle),
and the size limits that keep a shared laptop alive."""

import pytest

from cnn import architecture
from cnn.config import ConvBlock, HyperParams
from cnn.errors import ConfigError
from cnn.models import layer_rows, make_model
from cnn.presets import PRESETS, preset

SHAPES = [(32, 32, 3), (28, 28, 1), (32, 32, 1)]


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("shape", SHAPES)
def test_the_plan_is_what_keras_builds(name, shape):
    params = preset(name, precision="float32")
    planned = [(r.name, r.kind, r.output_shape, r.parameters)
               for r in architecture.plan(params, shape, 10)]
    built = layer_rows(make_model(params, shape, 10))
    assert planned == built


def test_the_plan_matches_keras_for_odd_configurations():
    params = HyperParams(
        conv_blocks=[ConvBlock(5, 5, False), ConvBlock(7, 1, True), ConvBlock(3, 3, True)],
        padding="valid", batch_norm=True, dropout=0.2, dense_units=[11, 7],
        augment_flip=True, augment_shift=0.1, precision="float32")
    planned = [(r.name, r.kind, r.output_shape, r.parameters)
               for r in architecture.plan(params, (29, 23, 2), 4)]
    assert planned == layer_rows(make_model(params, (29, 23, 2), 4))


def test_the_tutorial_is_far_below_the_limits():
    params = HyperParams()
    rows = architecture.plan(params, (32, 32, 3), 10)
    assert architecture.parameter_count(rows) == 122_570
    assert architecture.activation_bytes(rows, 64) < architecture.MAX_ACTIVATION_BYTES / 30
    params.validate((32, 32, 3), 10)


def test_a_huge_dense_layer_is_refused_before_anything_is_built():
    # The case: padding same, no pooling, Dense 4096 on digits (268 M parameters).
    params = HyperParams(dataset="digits", padding="same", dense_units=[4096],
                         conv_blocks=[ConvBlock(32, 3, False), ConvBlock(64, 3, False),
                                      ConvBlock(64, 3, False)])
    rows = architecture.plan(params, (32, 32, 1), 10)
    assert architecture.parameter_count(rows) > 268_000_000
    with pytest.raises(ConfigError, match=r"268,\d{3},\d{3} parameters; at most 10,000,000 "
                                          r"are allowed.*biggest layer is dense1"):
        params.validate((32, 32, 1), 10)


def test_a_batch_too_big_for_memory_is_refused_with_a_batch_size_that_fits():
    params = HyperParams(padding="same", batch_size=8192,
                         conv_blocks=[ConvBlock(256, 3, False), ConvBlock(256, 3, True)])
    with pytest.raises(ConfigError, match=r"A batch of 8,192 images needs about [\d.]+ GB") \
            as error:
        params.validate((32, 32, 3), 10)
    fits = int(str(error.value).split("batch size of at most ")[1].split(",")[0]
               .replace(",", ""))
    params.replace(batch_size=fits).validate((32, 32, 3), 10)


def test_the_biggest_network_the_form_allows_is_near_the_parameter_limit():
    # Wide convolutions, then 16,384 features into 512 dense units: allowed, just.
    params = HyperParams(conv_blocks=[ConvBlock(128, 3, True), ConvBlock(256, 3, True)],
                         padding="same", dense_units=[512])
    rows = architecture.plan(params, (32, 32, 3), 10)
    assert 8_000_000 < architecture.parameter_count(rows) <= architecture.MAX_PARAMETERS
    params.validate((32, 32, 3), 10)
