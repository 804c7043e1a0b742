"""Evaluation metrics checked against a hand computation (an oracle), not against sklearn."""

import numpy as np
import pytest

from cnn.evaluation import mistakes, report


def test_summary_matches_hand_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 0, 1, 1, 2, 0, 2, 2, 2])
    probs = np.eye(4)[y_pred]  # a 4th class that never occurs
    result = report(y_true, probs, ["a", "b", "c", "d"])
    expected = np.zeros((4, 4), int)
    for t, p in zip(y_true, y_pred):
        expected[t, p] += 1
    assert result["confusion_matrix"] == expected.tolist()
    assert result["accuracy"] == 7 / 10
    per = {c["class"]: c for c in result["per_class"]}
    # class c: 3 of 4 found (recall), 3 of 4 predictions right (precision)
    assert per["c"]["recall"] == 3 / 4 and per["c"]["precision"] == 3 / 4
    assert per["a"]["precision"] == 2 / 3 and per["a"]["recall"] == 2 / 3
    assert per["b"]["f1"] == 2 * (2 / 3) * (2 / 3) / (4 / 3)
    assert per["d"] == {"class": "d", "precision": 0, "recall": 0, "f1": 0, "support": 0}


def test_mistakes_most_confident_first():
    y_true = np.array([0, 1, 2, 0, 1])
    y_pred = np.array([1, 1, 0, 2, 0])
    confidence = np.array([0.6, 0.99, 0.9, 0.7, 0.8])
    assert mistakes(y_true, y_pred, confidence).tolist() == [2, 4, 3, 0]
    assert mistakes(y_true, y_pred, confidence, limit=2, most_confident=False).tolist() == [0, 2]



def test_the_test_loss_is_plain_cross_entropy_even_for_label_smoothed_runs():
    # Oracle: Keras's own unsmoothed loss on the same probabilities.
    import keras

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 4, 50)
    plain = float(keras.losses.SparseCategoricalCrossentropy()(y_true, probabilities))
    smoothed = float(keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(
        np.eye(4)[y_true], probabilities))
    result = report(y_true, probabilities, ["a", "b", "c", "d"])
    assert result["test_loss"] == pytest.approx(plain, rel=1e-5)
    assert abs(result["test_loss"] - smoothed) > 1e-3
