import pytest

from cnn.architecture import feature_map_sizes
from cnn.config import ConvBlock, HyperParams
from cnn.presets import PRESETS, preset
from cnn.errors import ConfigError


def test_defaults_are_the_tutorial():
    params = HyperParams()
    assert params.dataset == "cifar10"
    assert [(b.filters, b.kernel_size, b.pool) for b in params.conv_blocks] == [
        (32, 3, True), (64, 3, True), (64, 3, False)]
    assert params.dense_units == [64]
    assert (params.optimizer, params.batch_size, params.padding) == ("adam", 64, "valid")
    assert preset("tutorial") == params


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_round_trip_through_json(name):
    params = preset(name).validate((32, 32, 3))
    assert HyperParams.from_json(params.to_json()) == params
    params.validate((28, 28, 1))


def test_preset_overrides_ignore_none_and_apply_values():
    params = preset("fast", epochs=None, batch_size=32, dataset="digits")
    assert params.epochs == PRESETS["fast"]["epochs"]
    assert params.batch_size == 32 and params.dataset == "digits"


def test_unknown_settings_and_presets_are_refused():
    with pytest.raises(ConfigError, match="Unknown setting"):
        HyperParams.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="Unknown conv block setting"):
        HyperParams.from_dict({"conv_blocks": [{"filters": 8, "stride": 2}]})
    with pytest.raises(ConfigError, match="Unknown preset"):
        preset("turbo")


@pytest.mark.parametrize("changes, message", [
    ({"batch_size": 0}, "Batch size must be between 1"),
    ({"batch_size": 3.5}, "Batch size must be a whole number"),
    ({"epochs": True}, "Epochs must be a whole number"),
    ({"learning_rate": 0}, "Learning rate must be above 0"),
    ({"learning_rate": float("nan")}, "Learning rate must be a number"),
    ({"learning_rate": "fast"}, "Learning rate must be a number"),
    ({"dropout": 0.95}, "Dropout must be at least 0 and at most 0.9"),
    ({"validation_split": 0.8}, "Validation split"),
    ({"optimizer": "adagrad"}, "Optimizer must be one of adam, adamw, sgd, rmsprop"),
    ({"conv_blocks": []}, "at least one conv block"),
    ({"dense_units": [0]}, "Dense layer 1: units"),
    ({"train_size": -5}, "Training subset size"),
    ({"warmup_epochs": 20, "epochs": 10}, "Warm-up"),
])
def test_invalid_values_get_a_readable_message(changes, message):
    with pytest.raises(ConfigError, match=message):
        HyperParams().replace(**changes).validate()


def test_too_many_poolings_for_the_image_is_explained():
    params = HyperParams(conv_blocks=[ConvBlock(8, 1, True)] * 5)
    with pytest.raises(ConfigError) as error:
        params.validate((28, 28, 1))
    assert str(error.value) == "After 5 poolings a 28×28 image is 0×0 — use at most 4."


def test_kernel_larger_than_the_feature_map_is_explained():
    params = HyperParams(conv_blocks=[ConvBlock(8, 3, True)] * 4)
    with pytest.raises(ConfigError, match="Conv block 4: the feature maps are only 1×1"):
        params.validate((28, 28, 1))
    # With "same" padding the maps only shrink by pooling, so four blocks fit.
    assert feature_map_sizes(params.replace(padding="same"), (28, 28, 1)) == [14, 7, 3, 1]


def test_feature_map_sizes_follow_the_tutorial_arithmetic():
    # 32 -conv3-> 30 -pool-> 15 -conv3-> 13 -pool-> 6 -conv3-> 4
    assert feature_map_sizes(HyperParams(), (32, 32, 3)) == [15, 6, 4]
