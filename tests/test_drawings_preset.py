"""The drawings preset: its augmentation layers planned as Keras builds them, random only
while training, pen widths that really change, built-in layers only (safe-mode loading)."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnn import architecture, checkpoints, models
from cnn.config import HyperParams
from cnn.errors import ConfigError
from cnn.presets import DESCRIPTIONS, LABELS, PRESETS, for_dataset, preset

AUGMENTATION = ["random_blur", "random_brightness", "random_rotation", "random_zoom",
                "random_translation", "scale_to_0_1", "stroke_ramp", "stroke_clip"]


def rows(params, shape, classes=10):
    return [(r.name, r.kind, r.output_shape, r.parameters)
            for r in architecture.plan(params, shape, classes)]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 1), (64, 64, 1), (64, 64, 3)])
def test_the_plan_is_what_keras_builds(shape):
    params = preset("drawings", precision="float32")
    model = models.make_model(params, shape, 10)
    assert rows(params, shape) == models.layer_rows(model)
    names = [layer.name for layer in model.layers][:len(AUGMENTATION)]
    if shape[2] == 1:
        assert names == AUGMENTATION
    else:  # colour photos: turned, zoomed and shifted, but no pen widths
        assert names[:4] == ["random_rotation", "random_zoom", "random_translation",
                             "scale_to_0_1"]
        assert "stroke_ramp" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("shape, classes", [((28, 28, 1), 10), ((32, 32, 1), 10),
                                            ((64, 64, 1), 2), ((16, 16, 1), 3)])
def test_it_validates_for_mnist_digits_and_own_drawings(shape, classes):
    params = for_dataset("drawings", "mnist", mirror_safe=False)
    assert not params.augment_flip
    params.validate(shape, classes)
    assert architecture.parameter_count(architecture.plan(params, shape, classes)) < 2e6


def test_the_new_settings_are_declared_and_checked():
    assert "drawings" in PRESETS and "drawings" in DESCRIPTIONS
    assert {LABELS[k] for k in ("augment_rotation", "augment_zoom", "augment_stroke")} == {
        "rotations", "zoom", "pen widths"}
    for changes, message in [({"augment_rotation": 120.0}, "Random rotations must be"),
                             ({"augment_zoom": -0.1}, "Random zoom must be"),
                             ({"augment_stroke": "yes"}, "Random pen widths is on or off")]:
        with pytest.raises(ConfigError, match=message):
            HyperParams().replace(**changes).validate()
    # Runs saved before these settings existed load with them off.
    old = HyperParams.from_dict({"epochs": 3})
    assert (old.augment_rotation, old.augment_zoom, old.augment_stroke) == (0.0, 0.0, False)


def line(width: int, side: int = 32) -> np.ndarray:
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).line([(side // 2, 4), (side // 2, side - 5)], fill=255, width=width)
    return np.asarray(image)[..., np.newaxis]


def front(model):
    """The model's layers up to and including the pen-width ramp, as a function."""
    names = [layer.name for layer in model.layers]
    layers = model.layers[:names.index("stroke_clip") + 1]

    def apply(x, training):
        for layer in layers:
            x = layer(x, training=training)
        return np.asarray(x)
    return apply


def test_pen_widths_vary_while_training_and_not_when_classifying():
    params = HyperParams(augment_stroke=True, precision="float32", seed=3)
    apply = front(models.make_model(params, (32, 32, 1), 10))
    batch = np.repeat(line(3)[np.newaxis], 64, axis=0)
    # Classifying: no randomness, and a crisp drawing stays as it is (0 or 1 where it was
    # 0 or 255), only scaled to 0..1.
    seen = apply(batch, training=False)
    assert np.array_equal(seen, apply(batch, training=False))
    assert np.array_equal(seen[0] > 0.5, line(3) > 127)
    assert set(np.unique(seen)) <= {0.0, 1.0}
    # Training: the same line comes out thinner and thicker (ink area per image).
    widths = []
    for _ in range(4):
        ink = (apply(batch, training=True) > 0.5).sum(axis=(1, 2, 3)) / (32 - 9)
        widths += ink.tolist()
    assert min(widths) < 2.5 and max(widths) > 4.5, (min(widths), max(widths))
    assert np.std(widths) > 0.5


def test_rotation_zoom_and_shift_act_only_while_training():
    params = preset("drawings", augment_stroke=False, precision="float32")
    model = models.make_model(params, (32, 32, 1), 10)
    batch = np.repeat(line(4)[np.newaxis], 8, axis=0)
    scale_index = [layer.name for layer in model.layers].index("scale_to_0_1")

    def upto(x, training):
        for layer in model.layers[:scale_index + 1]:
            x = layer(x, training=training)
        return np.asarray(x)
    assert np.allclose(upto(batch, False), batch / 255)
    moved = upto(batch, True)
    assert not np.allclose(moved[0], moved[1])  # each image its own turn, zoom and shift


def test_a_drawings_model_trains_saves_and_loads_in_safe_mode(tmp_path):
    params = preset("drawings", precision="float32", epochs=1, batch_size=8)
    model = models.compile_model(models.make_model(params, (32, 32, 1), 2), params)
    x = np.concatenate([np.repeat(line(3)[np.newaxis], 16, axis=0),
                        np.repeat(np.rot90(line(5))[np.newaxis], 16, axis=0)])
    y = np.array([0] * 16 + [1] * 16)
    model.fit(x, y, epochs=2, verbose=0)
    checkpoints.save_model(model, tmp_path / "model.keras")
    loaded = checkpoints.load_model(tmp_path / "model.keras")  # safe mode
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
