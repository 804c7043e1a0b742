"""Inside the network: layers, filters, feature maps and "where it looked", each checked
against an independent computation — a hand calculation, the model's own layers called one
by one, or a dataset whose answer is known to lie in one region of the image."""

import os

import keras
import numpy as np
import pytest

from cnn import explain as ex
from cnn.models import compile_model, make_model
from cnn.presets import preset




# --- a dataset whose answer is in one known place ------------------------------------------

def quadrant_images(count, seed, side=32, square=8):
    """Grey noise (0-99) with one bright square held inside one quadrant; the label is
    that quadrant: 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100, (count, side, side, 1), dtype=np.uint8)
    y = rng.integers(0, 4, count)
    half = side // 2
    for image, label in zip(x, y):
        top = (label // 2) * half + rng.integers(0, half - square + 1)
        left = (label % 2) * half + rng.integers(0, half - square + 1)
        image[top:top + square, left:left + square] = 255
    return x, y


def peak_quadrant(values):
    row, col = np.unravel_index(np.argmax(values), values.shape)
    return int(row >= values.shape[0] // 2) * 2 + int(col >= values.shape[1] // 2)


def train_on_quadrants(params, x, y, epochs, batch_size):
    keras.utils.set_random_seed(0)
    model = compile_model(make_model(params, x.shape[1:], 4), params)
    if params.label_smoothing:
        y = keras.utils.to_categorical(y, 4)
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


@pytest.fixture(scope="module")
def tutorial_net():
    x, y = quadrant_images(2000, seed=0)
    return train_on_quadrants(preset("tutorial", precision="float32"), x, y, 3, 64)


@pytest.fixture(scope="module")
def held_out():
    return quadrant_images(40, seed=1)


def share_of_peaks_in_place(explainer, x, y):
    hits = [peak_quadrant(explainer.explain(image).heatmap.values) == label
            for image, label in zip(x, y)]
    return np.mean(hits)


def test_default_map_points_at_the_square_on_the_tutorial_net(tutorial_net, held_out):
    x, y = held_out
    explainer = ex.Explainer(tutorial_net)
    accuracy = np.mean(explainer.probabilities(x).argmax(axis=1) == y)
    assert accuracy >= 0.9  # the network has learnt the task, so its maps mean something
    assert explainer.explain(x[0]).heatmap.method == ex.DEFAULT_METHOD == ex.OCCLUSION
    assert share_of_peaks_in_place(explainer, x, y) >= 0.9


def test_default_map_points_at_the_square_with_batch_norm_and_bfloat16():
    # The strong preset: augmentation (no flips: they would move the square to another
    # quadrant), batch norm, dropout. On 16×16 images in batches of 16: batch norm's
    # running statistics need a few hundred steps to forget their start, and until they
    # have the network is wrong at inference however well it trains. Trained in float32
    # (bfloat16 is emulated, ~6× slower, on CPUs without AVX512-BF16), then its weights go
    # into the same net built with the mixed_bfloat16 policy.
    params = preset("strong", augment_flip=False, precision="float32")
    trained = train_on_quadrants(params, *quadrant_images(1500, 0, 16, 4), 4, 16)
    model = make_model(params.replace(precision="mixed_bfloat16"), (16, 16, 1), 4)
    model.set_weights(trained.get_weights())
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    kinds = {type(layer).__name__ for layer in model.layers}
    assert {"RandomTranslation", "BatchNormalization", "Dropout"} <= kinds

    x, y = quadrant_images(40, 1, 16, 4)
    explainer = ex.Explainer(model)
    assert np.mean(explainer.probabilities(x).argmax(axis=1) == y) >= 0.9
    assert share_of_peaks_in_place(explainer, x, y) >= 0.9
    for heatmap in explainer.explain(x[0], methods=ex.METHODS).heatmaps.values():
        assert heatmap.values.shape == (16, 16) and np.isfinite(heatmap.values).all()
        assert heatmap.values.max() == 1  # bfloat16 gradients still give a map


def test_every_map_is_a_unit_map_at_the_input_size_for_any_class(tutorial_net, held_out):
    x, y = held_out
    explainer = ex.Explainer(tutorial_net)
    other = (int(y[0]) + 1) % 4  # "why not this class?"
    result = explainer.explain(x[0], class_index=other, methods=ex.METHODS)
    assert result.predicted == y[0] and result.class_index == other
    assert list(result.heatmaps) == list(ex.METHODS)
    for heatmap in result.heatmaps.values():
        assert heatmap.values.shape == (32, 32) and heatmap.values.dtype == np.float32
        assert heatmap.values.min() >= 0 and heatmap.values.max() <= 1
        assert heatmap.class_index == other and heatmap.caption and heatmap.title
    assert result.probabilities.sum() == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError):
        explainer.explain(x[0], class_index=4)
    with pytest.raises(ValueError):
        explainer.explain(x[0].astype(np.float32))


# --- gradients by hand ---------------------------------------------------------------------


def linear_model(shape, weights, bias):
    """uint8 pixels → /255 → flatten → softmax(W·x + b): every gradient is known in closed form."""
    model = keras.Sequential([
        keras.Input(shape, dtype="uint8"),
        keras.layers.Rescaling(1 / 255, name="scale_to_0_1"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(weights.shape[1], activation="softmax", name="classes"),
    ])
    model.get_layer("classes").set_weights([weights, bias])
    return model


def test_saliency_is_the_hand_computed_gradient():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(4 * 5, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    explainer = ex.Explainer(linear_model((4, 5, 1), weights, bias))
    image = rng.integers(0, 256, (4, 5, 1), dtype=np.uint8)

    # d logit_c / d pixel = W[pixel, c] / 255 (the Rescaling's factor), wherever the input.
    for c in range(3):
        gradient = explainer.input_gradients(image[np.newaxis].astype(np.float32), c)[0]
        np.testing.assert_allclose(gradient, weights[:, c].reshape(4, 5, 1) / 255, rtol=1e-5)

    # SmoothGrad of a linear model: every noisy copy has that same gradient; the map is its
    # magnitude with the top 1 % clipped, scaled to [0, 1].
    magnitude = np.abs(weights[:, 1].reshape(4, 5)) / 255
    expected = np.minimum(magnitude, np.percentile(magnitude, 99))
    smooth = explainer.heatmap(image, ex.SMOOTHGRAD, class_index=1)
    np.testing.assert_allclose(smooth.values, expected / expected.max(), rtol=1e-4)


def test_occlusion_is_the_measured_drop_of_the_log_odds():
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(8 * 8, 2)).astype(np.float32)
    bias = np.zeros(2, np.float32)
    explainer = ex.Explainer(linear_model((8, 8, 1), weights, bias))
    image = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)

    def log_odds(pixels, c=0):  # two classes: log(p0 / p1) = z0 − z1
        z = pixels.reshape(-1).astype(np.float64) / 255 @ weights + bias
        return z[c] - z[1 - c]

    # 8×8 image: 2×2 patches every pixel (occlusion_geometry), filled with the mean.
    assert ex.occlusion_geometry(8, 8) == (2, 1)
    fill = image.mean()
    total, count = np.zeros((8, 8)), np.zeros((8, 8))
    for top in range(7):
        for left in range(7):
            hidden = image.astype(np.float64)
            hidden[top:top + 2, left:left + 2] = fill
            total[top:top + 2, left:left + 2] += log_odds(image) - log_odds(hidden)
            count[top:top + 2, left:left + 2] += 1
    expected = np.maximum(total / count, 0)
    heatmap = explainer.occlusion(image, class_index=0)
    assert heatmap.scale == pytest.approx(expected.max(), rel=1e-4)
    np.testing.assert_allclose(heatmap.values, expected / expected.max(), atol=1e-4)


def test_grad_cam_and_hirescam_match_a_hand_computation():
    # pixels → /255 → 1×1 conv with 2 filters + ReLU → flatten → softmax over 3 classes.
    rng = np.random.default_rng(5)
    model = keras.Sequential([
        keras.Input((6, 6, 1), dtype="uint8"),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(2, 1, activation="relu", name="conv1"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax", name="classes"),
    ])
    kernel, conv_bias = np.array([[[[1.5, -0.7]]]], np.float32), np.array([0.1, 0.4], np.float32)
    dense = rng.normal(size=(6 * 6 * 2, 3)).astype(np.float32)
    model.get_layer("conv1").set_weights([kernel, conv_bias])
    model.get_layer("classes").set_weights([dense, np.zeros(3, np.float32)])
    image = rng.integers(0, 256, (6, 6, 1), dtype=np.uint8)

    activation = np.maximum(image / 255 * kernel[0, 0, 0] + conv_bias, 0)  # (6, 6, 2)
    gradient = dense[:, 2].reshape(6, 6, 2)  # d logit_2 / d activation (flatten order)
    grad_cam = np.maximum(activation @ gradient.mean(axis=(0, 1)), 0)
    hires_cam = np.maximum((activation * gradient).sum(axis=-1), 0)

    # A 1×1 conv's cells sit on the input pixels: the placement on the input is exact.
    maps = ex.Explainer(model).gradient_maps(image, class_index=2,
                                             methods=(ex.GRADCAM, ex.HIRESCAM))
    np.testing.assert_allclose(maps[ex.GRADCAM].values, grad_cam / grad_cam.max(), atol=1e-5)
    np.testing.assert_allclose(maps[ex.HIRESCAM].values, hires_cam / hires_cam.max(), atol=1e-5)
    assert maps[ex.HIRESCAM].scale == pytest.approx(hires_cam.max(), rel=1e-5)


def test_upsampling_places_each_cell_at_its_receptive_field_centre():
    info = ex.LayerInfo("conv3", "Conv2D", (4, 4, 1), 0, (18, 18), (4, 4), (8.5, 8.5), False)
    grid = np.zeros((4, 4))
    grid[1, 2] = 1.0  # centre at input row 8.5 + 4 = 12.5, column 8.5 + 8 = 16.5
    out = ex.upsample(grid, info, 32, 32)
    assert out.shape == (32, 32)
    # Linear between centres: half-way pixels 12 and 13 get 0.875 (0.5 px from 12.5 of 4).
    assert out[12, 16] == pytest.approx(0.875 * 0.875)
    assert out[0, 0] == 0 and out[:, 31].max() == 0  # beyond the outer centres: held
    assert np.unravel_index(np.argmax(out), out.shape) in {(12, 16), (12, 17), (13, 16), (13, 17)}


# --- the layers as data --------------------------------------------------------------------


def test_receptive_fields_of_the_tutorial_net_match_a_hand_computation():
    model = make_model(preset("tutorial", precision="float32"), (32, 32, 3), 10)
    table = {row.name: row for row in ex.layer_table(model)}
    # Valid 3×3 conv: 1 + 2 = 3; 2×2 pool: 3 + 1 = 4, jump 2; conv: 4 + 2·2 = 8;
    # pool: 8 + 1·2 = 10, jump 4; conv: 10 + 2·4 = 18. Centres of position 0: 1, 1.5, 3.5,
    # 4.5, 8.5 (the middle of pixels 0-2, 0-3, 0-7, 0-9, 0-17).
    expected = {"scale_to_0_1": (1, 1, 0.0), "conv1": (3, 1, 1.0), "pool1": (4, 2, 1.5),
                "conv2": (8, 2, 3.5), "pool2": (10, 4, 4.5), "conv3": (18, 4, 8.5)}
    for name, (field, jump, centre) in expected.items():
        assert table[name].receptive_field == (field, field), name
        assert table[name].jump == (jump, jump) and table[name].centre == (centre, centre)
    assert table["conv1"].output_shape == (30, 30, 32) and table["conv1"].parameters == 896
    assert table["flatten"].receptive_field is None and table["classes"].receptive_field is None
    assert not any(row.training_only for row in table.values())


def test_receptive_fields_with_same_padding_batch_norm_and_augmentation():
    model = make_model(preset("strong", precision="float32"), (32, 32, 3), 10)
    rows = ex.layer_table(model)
    # Augmentation and dropout layers have Keras's automatic names (random_flip_3...).
    assert {row.kind for row in rows if row.training_only} == {
        "RandomFlip", "RandomTranslation", "Dropout"}
    table = {row.name: row for row in rows}
    # "same" pads one pixel before a 3×3 window: the field's size is unchanged, its centre
    # moves back to pixel 0. Batch norm and ReLU keep the field.
    expected = {"conv1": (3, 1, 0.0), "batch_norm1": (3, 1, 0.0), "relu1": (3, 1, 0.0),
                "pool1": (4, 2, 0.5), "conv2": (8, 2, 0.5), "pool2": (10, 4, 1.5),
                "relu3": (18, 4, 1.5), "pool3": (22, 8, 3.5)}
    for name, (field, jump, centre) in expected.items():
        assert (table[name].receptive_field, table[name].jump, table[name].centre) == (
            (field, field), (jump, jump), (centre, centre)), name


# --- filters and feature maps --------------------------------------------------------------


def test_filters_shown_are_the_weights():
    model = make_model(preset("tutorial", precision="float32"), (32, 32, 3), 10)
    kernel = model.get_layer("conv1").get_weights()[0]
    kernel[0, 0, 0, 0] = 0.0
    model.get_layer("conv1").set_weights([kernel, model.get_layer("conv1").get_weights()[1]])

    every = ex.all_filters(model)
    assert list(every) == ["conv1", "conv2", "conv3"]
    for name, shown in every.items():
        weights = model.get_layer(name).get_weights()[0]
        np.testing.assert_allclose(shown.weights(), weights, atol=1e-6 * shown.scale)
        assert shown.scale == pytest.approx(np.abs(weights).max())
        assert shown.images.min() >= 0 and shown.images.max() <= 1
    first = every["conv1"]
    assert first.colour and not every["conv2"].colour
    assert first.images.shape == (32, 3, 3, 3)  # (filters, height, width, RGB)
    assert first.images[0, 0, 0, 0] == 0.5  # a zero weight is mid-grey

    # The picture: 32 colour tiles, 8 a row, 3×3 pixels enlarged 4×, 1 white pixel apart.
    grid = ex.filter_grid(first, factor=4, gap=1, columns=8)
    assert grid.shape == (4 * 12 + 3, 8 * 12 + 7, 3) and grid.dtype == np.uint8
    tile = grid[13:25, 26:38]  # row 1, column 2: filter 10
    np.testing.assert_array_equal(tile[::4, ::4], np.rint(first.images[10] * 255))
    assert (grid[12] == 255).all()
    # A deeper layer: a row per filter, a grey tile per input channel.
    deep = ex.filter_grid(every["conv2"], factor=1, gap=1, max_filters=5, max_channels=4)
    assert deep.shape == (5 * 3 + 4, 4 * 3 + 3, 3)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_feature_maps_are_the_layer_outputs(precision):
    params = preset("strong", precision=precision).replace(
        conv_blocks=[{"filters": 6, "kernel_size": 3, "pool": True},
                     {"filters": 8, "kernel_size": 3, "pool": False}], dense_units=[8])
    keras.utils.set_random_seed(1)
    model = make_model(params, (16, 16, 3), 5)
    image = np.random.default_rng(6).integers(0, 256, (16, 16, 3), dtype=np.uint8)

    # The oracle: the model's own layers called one after another on the uint8 image.
    expected, x = {}, image[np.newaxis]
    for layer in model.layers:
        x = layer(x, training=False)
        expected[layer.name] = np.asarray(keras.ops.cast(x, "float32"))
    explainer = ex.Explainer(model)
    maps = explainer.feature_maps(image)
    assert [m.layer for m in maps] == ["conv1", "relu1", "pool1", "conv2", "relu2"]
    assert explainer.cam_layer == "relu2" and explainer.activation_layers == ["relu1", "relu2"]
    tolerance = 1e-5 if precision == "float32" else 2e-2
    for m in maps:
        unsorted = np.empty_like(m.maps)
        unsorted[m.channels] = m.maps
        reference = np.transpose(expected[m.layer][0], (2, 0, 1))
        np.testing.assert_allclose(unsorted, reference, atol=tolerance * np.abs(reference).max())
        np.testing.assert_allclose(m.strength, np.abs(m.maps).mean(axis=(1, 2)), rtol=1e-6)
        assert (np.diff(m.strength) <= 0).all()  # strongest first
    np.testing.assert_allclose(explainer.probabilities(image[np.newaxis])[0],
                               expected["classes"][0], atol=1e-5)

    grid = ex.feature_map_grid(maps[0], columns=4, factor=2, gap=1)
    assert grid.shape == (2 * 32 + 1, 4 * 32 + 3, 3)  # 6 maps of 16×16 ("same"): 2 rows of 4
    assert (grid[:, 32] == 255).all() and (grid[32] == 255).all()


def test_a_saved_model_is_explained_as_it_was_before_saving(tmp_path):
    # Runs trained before this feature existed only have model.keras: nothing to re-train.
    params = preset("strong", precision="float32").replace(
        conv_blocks=[{"filters": 4, "kernel_size": 3, "pool": True}], dense_units=[8])
    keras.utils.set_random_seed(2)
    model = make_model(params, (12, 12, 1), 3)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", compile=False, safe_mode=True)
    image = np.random.default_rng(10).integers(0, 256, (12, 12, 1), dtype=np.uint8)
    before, after = ex.explain(model, image), ex.explain(loaded, image)
    np.testing.assert_allclose(after.probabilities, before.probabilities, atol=1e-6)
    np.testing.assert_allclose(after.heatmap.values, before.heatmap.values, atol=1e-5)
    for a, b in zip(after.feature_maps, before.feature_maps):
        np.testing.assert_allclose(a.maps, b.maps, atol=1e-6)
    assert [r.receptive_field for r in ex.layer_table(loaded)] == [
        r.receptive_field for r in ex.layer_table(model)]


def test_pictures_use_the_documented_colours():
    np.testing.assert_array_equal(ex.colorize(np.array([0.0, 1.0])), ex.INFERNO[[0, -1]])
    np.testing.assert_array_equal(ex.colorize(np.array([0.5]))[0], ex.INFERNO[4])
    image = np.random.default_rng(7).integers(0, 256, (4, 4, 1), dtype=np.uint8)
    heat = np.linspace(0, 1, 16).reshape(4, 4)
    np.testing.assert_array_equal(ex.overlay(image, heat, alpha=0), np.repeat(image, 3, -1))
    np.testing.assert_array_equal(ex.overlay(image, heat, alpha=1), ex.colorize(heat))
    assert ex.overlay(image, heat, factor=3).shape == (12, 12, 3)
    assert ex.png_bytes(ex.colorize(heat)).startswith(b"\x89PNG")


# --- live snapshots ------------------------------------------------------------------------


def small_net(seed=0):
    params = preset("tutorial", precision="float32").replace(
        conv_blocks=[{"filters": 4, "kernel_size": 3, "pool": True},
                     {"filters": 6, "kernel_size": 3, "pool": False}], dense_units=[8])
    keras.utils.set_random_seed(seed)
    return compile_model(make_model(params, (12, 12, 3), 3), params)


def test_snapshot_round_trip(tmp_path):
    model = small_net()
    image = np.random.default_rng(8).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    path = tmp_path / "snapshot.npz"
    initial = model.get_layer("conv1").get_weights()[0] * 0.5
    ex.write_snapshot(model, image, path, epoch=3, initial_kernel=initial)

    snap = ex.read_snapshot(path)
    assert snap.epoch == 3
    np.testing.assert_array_equal(snap.image, image)
    np.testing.assert_allclose(snap.filters.weights(), model.get_layer("conv1").get_weights()[0],
                               atol=1e-6)
    np.testing.assert_allclose(snap.initial_filters.weights(), initial, atol=1e-6)
    assert snap.filters.colour
    maps = {m.layer: m for m in ex.Explainer(model).feature_maps(image)}  # traced path
    for stored in (snap.first_maps, snap.last_maps):
        np.testing.assert_allclose(stored.maps, maps[stored.layer].maps, rtol=1e-3, atol=1e-3)
    assert (snap.first_maps.layer, snap.last_maps.layer) == ("conv1", "conv2")
    np.testing.assert_allclose(snap.probabilities, model.predict_on_batch(image[None])[0],
                               atol=1e-5)
    assert os.listdir(tmp_path) == ["snapshot.npz"]  # no temp file left
    assert path.stat().st_size < 20_000


def test_reading_no_snapshot_or_a_damaged_one_gives_none(tmp_path):
    assert ex.read_snapshot(tmp_path / "missing.npz") is None
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert ex.read_snapshot(tmp_path / "bad.npz") is None


def test_snapshot_writer_records_before_training_and_every_epoch(tmp_path):
    model = small_net()
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    y = np.arange(16) % 3
    before = model.get_layer("conv1").get_weights()[0]
    path = tmp_path / "snapshot.npz"
    writer = ex.SnapshotWriter(path, x[0])

    # Without fit, as Keras's own callback tests do.
    writer.set_model(model)
    writer.on_train_begin()
    assert ex.read_snapshot(path).epoch == 0 and writer.snapshots_written == 1

    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[writer])
    assert writer.snapshots_written == 3  # state was reset: before training + 2 epochs
    snap = ex.read_snapshot(path)
    assert snap.epoch == 2
    np.testing.assert_allclose(snap.initial_filters.weights(), before, atol=1e-6)
    np.testing.assert_allclose(snap.filters.weights(), model.get_layer("conv1").get_weights()[0],
                               atol=1e-6)
    assert not np.allclose(snap.filters.weights(), before)  # it trained
