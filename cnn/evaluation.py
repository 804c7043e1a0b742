"""Test-set metrics from predicted probabilities (scikit-learn does the counting)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def summarize(y_true: np.ndarray, probabilities: np.ndarray,
              class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, confusion matrix (rows: true class, columns: predicted) and per-class
    precision/recall/F1/support, as plain JSON-ready data."""
    # Imported here, after training: scikit-learn and SciPy add ~150 MB to a process.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(probabilities).argmax(axis=1)
    labels = list(range(len(class_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    per_class = [
        {"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
         "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    ]
    return {
        "accuracy": float((y_pred == y_true).mean()) if len(y_true) else 0.0,
        "confusion_matrix": matrix.tolist(),
        "per_class": per_class,
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
    }


def mistakes(y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray,
             limit: int = 24, most_confident: bool = True) -> np.ndarray:
    """Indices of misclassified images, most confident mistakes first (or in test order)."""
    y_true = np.asarray(y_true).ravel()
    wrong = np.flatnonzero(np.asarray(y_pred) != y_true)
    if most_confident:
        wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")]
    return wrong[:limit]
