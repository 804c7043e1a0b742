"""A run saved by the version before the restructure (tests/data/legacy-run: trained with
`python -m cnn train --dataset digits --preset fast --epochs 2` at commit 2e4b59f, tiny
conv blocks) still opens everywhere: the core, the CLI and every page."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import support
from cnn import datasets, runs
from cnn.checkpoints import load_model

REPO = Path(__file__).resolve().parent.parent
LEGACY = REPO / "tests" / "data" / "legacy-run"
RUN_ID = "20261125-185151-digits-8513"


@pytest.fixture
def legacy(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))  # digits only
    root = runs.runs_dir()
    shutil.copytree(LEGACY, root / RUN_ID)
    return runs.get_run(RUN_ID)


def test_the_core_reads_every_file_of_an_old_run(legacy):
    status = legacy.status()
    assert status["state"] == runs.FINISHED and "problem" not in status
    assert status["test_accuracy"] == pytest.approx(0.6083, abs=1e-4)
    params = legacy.config
    assert (params.dataset, params.epochs, params.batch_size) == ("digits", 2, 64)
    assert [r["epoch"] for r in legacy.metrics() if r["kind"] == "epoch"] == [1, 2]
    report = legacy.evaluation()
    assert report is not None and report["test_images"] == 360
    # Its model gives the predictions it stored.
    model = load_model(legacy.model_path)
    x_test = datasets.load("digits").x_test
    stored = np.load(legacy.predictions_path)
    predicted = np.asarray(model.predict(x_test, verbose=0)).argmax(axis=1)
    np.testing.assert_array_equal(predicted, stored["y_pred"])


def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cnn", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_cli_lists_evaluates_and_predicts_with_an_old_run(legacy, tmp_path):
    [row] = cli("runs", "--json")["runs"]
    assert (row["run_id"], row["status"], row["epochs_completed"]) == (RUN_ID, "finished", 2)
    assert cli("evaluate", RUN_ID, "--json")["test_accuracy"] == pytest.approx(0.6083,
                                                                                abs=1e-4)
    image = tmp_path / "seven.png"
    Image.fromarray(datasets.load("digits").x_test[0][..., 0]).save(image)
    [prediction] = cli("predict", RUN_ID, str(image), "--json")["predictions"]
    assert prediction["labels"][0] in "0123456789"


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/train.py",
                                  "app_pages/evaluate.py", "app_pages/classify.py"])
def test_every_page_opens_an_old_run(legacy, page):
    at = support.open_page(page)
    assert not at.exception and not at.error
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.metric,
                                              *at.success])
    if page.endswith(("home.py", "evaluate.py")):
        assert "60.8%" in shown
    if page.endswith(("train.py", "evaluate.py", "classify.py")):
        assert RUN_ID in [box.value for box in at.selectbox
                          if box.key in ("train_run", "evaluate_run", "classify_run")]
