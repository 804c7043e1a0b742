"""The ready-made networks shipped in assets/ready/: copied once into an empty runs folder,
finished runs like any other, and good at their dataset's real test images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cnn import datasets, ready_models, runs
from cnn.checkpoints import load_model
from cnn.inference import predict

pytestmark = pytest.mark.skipif(not ready_models.shipped(),
                                reason="no ready-made models in assets/ready/ yet")


@pytest.fixture
def copying(monkeypatch):
    monkeypatch.setenv(ready_models.ENV, "1")  # the test suite turns them off elsewhere


def test_they_are_copied_once_and_a_deleted_one_stays_deleted(copying, tmp_path):
    root = tmp_path / "runs"
    copied = ready_models.install(root)
    assert sorted(copied) == sorted(p.name for p in ready_models.shipped())
    listed = {run.id: run for run in runs.list_runs(root)}
    assert set(listed) == set(copied)
    for run in listed.values():
        status = run.status()
        assert status["state"] == runs.FINISHED and status["ready"] is True
        assert status["name"].startswith("Ready-made")
        assert not list(root.glob(".*.new"))  # no staging folder left behind
    gone = copied[0]
    shutil.rmtree(root / gone)
    assert ready_models.install(root) == []  # not copied again
    assert not (root / gone).exists()


def test_off_in_the_test_suite_and_when_asked(monkeypatch, tmp_path):
    monkeypatch.setenv(ready_models.ENV, "0")
    assert ready_models.install(tmp_path / "runs") == []
    assert runs.list_runs(tmp_path / "runs") == []


def test_the_digits_network_reads_real_digits(copying, tmp_path):
    """An independent check of the shipped digits network: scikit-learn's digits test
    images (its own loader's split), classified through the same code as Classify."""
    ready_models.install(tmp_path / "runs")
    [run] = [r for r in runs.list_runs(tmp_path / "runs") if r.config.dataset == "digits"]
    data = datasets.load("digits")
    model = load_model(run.model_path)
    answers = predict(model, list(data.x_test), data.info.class_names, top_k=1)
    said = np.array([data.info.class_names.index(a.labels[0]) for a in answers])
    accuracy = float((said == data.y_test).mean())
    assert accuracy >= 0.95
    assert accuracy == pytest.approx(run.status()["test_accuracy"], abs=0.01)
