"""Testing a trained network: one pass over the test set, scikit-learn does the counting.

The test loss is plain cross-entropy computed from the stored probabilities, so runs
trained with label smoothing (whose training loss is the smoothed one) are compared on the
same scale as the others, and the test images go through the network once, not twice.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from cnn.errors import CnnError
from cnn.store import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    import keras

    from cnn.datasets import Dataset
    from cnn.runs import Run

_EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in its cross-entropy too


def cross_entropy(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean −log p(true class): the unsmoothed loss, as Keras computes it."""
    y_true = np.asarray(y_true).astype(int).ravel()
    if not len(y_true):
        return 0.0
    p = np.clip(np.asarray(probabilities, dtype=np.float64)[np.arange(len(y_true)), y_true],
                _EPSILON, 1 - _EPSILON)
    return float(-np.log(p).mean())


def report(y_true: np.ndarray, probabilities: np.ndarray,
                class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, loss, confusion matrix (rows: true class, columns: predicted) and
    per-class precision/recall/F1/support, as plain JSON-ready data."""
    # Imported here, after training: scikit-learn and SciPy add ~150 MB to a process.
    from sklearn.metrics import classification_report, confusion_matrix

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(probabilities).argmax(axis=1)
    labels = list(range(len(class_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    scores = classification_report(y_true, y_pred, labels=labels, output_dict=True,
                                   zero_division=0)
    per_class = [
        {"class": name, "precision": float(scores[str(i)]["precision"]),
         "recall": float(scores[str(i)]["recall"]), "f1": float(scores[str(i)]["f1-score"]),
         "support": int(scores[str(i)]["support"])}
        for i, name in enumerate(class_names)
    ]
    accuracy = float((y_pred == y_true).mean()) if len(y_true) else 0.0
    return {
        "accuracy": accuracy,
        "test_accuracy": accuracy,
        "test_loss": cross_entropy(y_true, probabilities),
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
        "macro_f1": float(scores["macro avg"]["f1-score"]),
    }


def evaluate_model(run: Run, model: keras.Model, data: Dataset,
                   callbacks: list | None = None) -> dict[str, Any]:
    """Test loss/accuracy, confusion matrix and per-class report, stored in the run
    (evaluation.json, predictions.npz)."""
    info = data.info
    probabilities = model.predict(data.x_test, batch_size=256, verbose=0, callbacks=callbacks)
    result = {**report(data.y_test, probabilities, info.class_names),
              "class_names": list(info.class_names), "test_images": len(data.x_test)}
    atomic_write_json(run.evaluation_path, result)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_pred=probabilities.argmax(axis=1).astype("int32"),
                        confidence=probabilities.max(axis=1).astype("float32"),
                        y_true=np.asarray(data.y_test).astype("int32"))
    atomic_write_bytes(run.predictions_path, buffer.getvalue())
    return result


def evaluate_run(run: Run) -> dict[str, Any]:
    """(Re-)evaluate a run's saved model on its test set — e.g. an interrupted run's last
    checkpoint. Loads the model in safe mode."""
    from cnn import datasets
    from cnn.checkpoints import load_model

    if not run.has_model():
        raise CnnError(f"Run {run.id} has no saved model yet (it never finished an epoch).")
    model = load_model(run.model_path)
    data = datasets.load(run.config.dataset, download_missing=False)
    return evaluate_model(run, model, data)


def check_report(stored: dict[str, Any]) -> str | None:
    """What is wrong with a stored evaluation (a damaged or hand-edited file), or None."""
    def number(key: str) -> bool:
        value = stored.get(key)
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)

    for key in ("test_accuracy", "test_loss", "macro_f1", "test_images"):
        if not number(key):
            return f"evaluation.json: {key} is missing or not a number"
    names = stored.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        return "evaluation.json: class_names is not a list of names"
    matrix = stored.get("confusion_matrix")
    n = len(names)
    if not (isinstance(matrix, list) and len(matrix) == n and all(
            isinstance(row, list) and len(row) == n and all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in row)
            for row in matrix)):
        return f"evaluation.json: the confusion matrix is not {n}×{n} counts"
    per_class = stored.get("per_class")
    keys = {"class": str, "precision": (int, float), "recall": (int, float),
            "f1": (int, float), "support": int}
    if not (isinstance(per_class, list) and len(per_class) == n and all(
            isinstance(row, dict) and all(isinstance(row.get(k), t) for k, t in keys.items())
            for row in per_class)):
        return "evaluation.json: the per-class table is damaged"
    return None


def load_predictions(run: Run, test_images: int) -> dict[str, np.ndarray]:
    """predictions.npz checked against the test set's size; CnnError when damaged."""
    try:
        with np.load(run.predictions_path, allow_pickle=False) as stored:
            arrays = {key: np.asarray(stored[key]) for key in ("y_true", "y_pred",
                                                               "confidence")}
    except FileNotFoundError:
        raise CnnError("This run has no saved predictions.") from None
    except Exception as error:  # a damaged zip or array: np.load raises many kinds
        raise CnnError(f"This run's predictions.npz is damaged ({type(error).__name__}).") \
            from None
    if any(a.ndim != 1 or len(a) != test_images for a in arrays.values()):
        raise CnnError("This run's predictions.npz does not match its test set.")
    return arrays


def mistakes(y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray,
             limit: int = 24, most_confident: bool = True) -> np.ndarray:
    """Indices of misclassified images, most confident mistakes first (or in test order)."""
    y_true = np.asarray(y_true).ravel()
    wrong = np.flatnonzero(np.asarray(y_pred) != y_true)
    if most_confident:
        wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")]
    return wrong[:limit]
