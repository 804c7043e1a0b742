"""Saving and loading models: whole or not at all, and never running code from a file.

A model is saved to a hidden temp name and renamed, so a crash or a full disk mid-save
never leaves a broken model.keras; it is loaded in Keras's safe mode, so a model file
(uploaded, or a run folder tampered with) can never run code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from cnn.errors import CnnError
from cnn.store import storage_error

if TYPE_CHECKING:
    import keras

# Layers that wrap code or state a .keras file cannot carry safely, and what they are.
_FOREIGN_LAYERS = {
    "Lambda": "custom Python code (a Lambda layer)",
    "TFSMLayer": "a TFSMLayer (a whole TensorFlow SavedModel)",
    "StringLookup": "a StringLookup layer (text input, not images)",
    "TextVectorization": "a TextVectorization layer (text input, not images)",
}


def save_model(model: keras.Model, path: str | Path) -> None:
    """Save to a temp name in the same folder and rename. StorageError (disk full,
    read-only folder) with the temp file removed and the previous model kept."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    try:
        model.save(tmp)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise storage_error(error, path) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_model(path: str | Path) -> keras.Model:
    """Load a .keras model for inference, in safe mode: a model file never runs code.

    Raises:
        CnnError: missing file, not a .keras file, damaged, or containing code or layers
            this app does not load.
    """
    from cnn import runtime

    runtime.start_tensorflow()
    import keras

    path = Path(path)
    if not path.exists():
        raise CnnError(f"Model file {path.name} does not exist.")
    if not path.is_file() or path.suffix != ".keras":
        # Legacy .h5 and SavedModel folders are refused: they can carry code past safe mode.
        raise CnnError(f"{path.name} is not a .keras model file.")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        raise CnnError(_load_problem(path.name, str(exc))) from exc
    if not isinstance(model, keras.Model):
        raise CnnError(f"{path.name} holds a {type(model).__name__}, not a Keras model.")
    # Loadable safely, but is it an image classifier this app can feed?
    for layer in model.layers:
        if type(layer).__name__ in _FOREIGN_LAYERS:
            raise CnnError(f"{path.name} contains {_FOREIGN_LAYERS[type(layer).__name__]}, "
                           "which this app does not use.")
    shapes = model.inputs if isinstance(model.inputs, list) else [model.inputs]
    if len(shapes) != 1 or len(shapes[0].shape) != 4:
        raise CnnError(f"{path.name} does not take one batch of images (height × width × "
                       "channels), so this app cannot use it.")
    return model


def _load_problem(name: str, text: str) -> str:
    """Why Keras refused a file, in one sentence (Keras's own messages are pages long)."""
    for layer, what in _FOREIGN_LAYERS.items():
        if re.search(rf"\b{layer}\b", text):
            return f"{name} contains {what}, which this app never loads, for safety."
    if "safe_mode" in text or "lambda" in text.lower():
        return f"{name} contains custom Python code, which is never loaded for safety."
    if "Could not locate" in text or "Unknown layer" in text:
        return f"{name} uses a custom layer this app does not know."
    return f"{name} is damaged or not a Keras model file."
