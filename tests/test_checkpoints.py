"""Saving and loading models: what a refused file is told it contains."""

import keras
import numpy as np
import pytest

from cnn.checkpoints import load_model, save_model
from cnn.errors import CnnError


def test_a_model_with_a_string_lookup_is_named_for_what_it_is(tmp_path):
    inputs = keras.Input((1,), dtype="string")
    outputs = keras.layers.StringLookup(vocabulary=["cat", "dog"])(inputs)
    path = tmp_path / "lookup.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(CnnError, match="lookup.keras contains a StringLookup layer \\(text "
                                       "input, not images\\), which this app does not use"):
        load_model(path)


def test_a_model_wrapping_a_saved_model_is_named_for_what_it_is(tmp_path):
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    inner.export(tmp_path / "exported", verbose=False)
    inputs = keras.Input((4,))
    outputs = keras.layers.TFSMLayer(str(tmp_path / "exported"), call_endpoint="serve")(inputs)
    path = tmp_path / "wrapped.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(CnnError, match="wrapped.keras contains a TFSMLayer \\(a whole "
                                       "TensorFlow SavedModel\\)"):
        load_model(path)


def test_save_replaces_the_model_whole_and_leaves_no_temp_file(tmp_path):
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])
    path = tmp_path / "model.keras"
    save_model(model, path)
    save_model(model, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    np.testing.assert_allclose(load_model(path).get_weights()[0], model.get_weights()[0])
