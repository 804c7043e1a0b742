"""The CLI contract: exit codes, one readable line on bad input, --json last line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def cli(*args, check_code=None, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CNN_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "cnn", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)
    if check_code is not None:
        assert proc.returncode == check_code, proc.stderr + proc.stdout
    return proc


def last_json(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_one_readable_line(proc):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_datasets_lists_the_registry():
    data = last_json(cli("datasets", "--json", check_code=0))
    names = [d["name"] for d in data["datasets"]]
    assert names == ["cifar10", "fashion_mnist", "mnist", "cifar100", "digits"]
    digits = data["datasets"][-1]
    assert digits["on_disk"] is True and digits["image_shape"] == [32, 32, 1]


@pytest.mark.parametrize("args, words", [
    (["train", "--dataset", "imagenet"], "imagenet"),
    (["train", "--dataset", "digits", "--batch-size", "0"], "Batch size"),
    (["train", "--dataset", "digits", "--learning-rate", "-1"], "Learning rate"),
    (["train", "--dataset", "cifar10"], "cifar-10-python.tar.gz"),
    (["stop", "no-such-run"], "There is no run"),
    (["evaluate", "no-such-run"], "There is no run"),
])
def test_bad_input_exits_2_with_one_line(args, words):
    proc = cli(*args)
    assert_one_readable_line(proc)
    assert words in proc.stderr


def test_bad_config_file_is_explained(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"conv_blocks": [{"filters": 8}, {"filters": 8}, {"filters": 8}, '
                      '{"filters": 8}, {"filters": 8}]}')
    proc = cli("train", "--dataset", "digits", "--config", str(config))
    assert_one_readable_line(proc)
    assert "Conv block" in proc.stderr or "poolings" in proc.stderr


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    proc = cli("train", "--dataset", "digits", "--preset", "fast", "--epochs", "3",
               "--runs-dir", str(runs_dir), "--json", check_code=0)
    result = last_json(proc)
    assert "epoch 3" in proc.stderr  # progress goes to stderr
    return runs_dir, result


def test_train_json_reports_the_run(trained_run):
    runs_dir, result = trained_run
    assert result["status"] == "finished"
    assert result["epochs_completed"] == 3
    assert 0 < result["test_accuracy"] <= 1 and result["test_loss"] > 0
    assert result["train_images_per_second"] > 0 and result["seconds"] > 0
    listed = last_json(cli("runs", "--runs-dir", str(runs_dir), "--json", check_code=0))
    assert [r["run_id"] for r in listed["runs"]] == [result["run_id"]]


def test_evaluate_recomputes_the_stored_result(trained_run):
    runs_dir, result = trained_run
    stored = last_json(cli("evaluate", result["run_id"], "--runs-dir", str(runs_dir),
                           "--json", check_code=0))
    again = last_json(cli("evaluate", result["run_id"], "--recompute", "--runs-dir",
                          str(runs_dir), "--json", check_code=0))
    assert stored["test_accuracy"] == pytest.approx(result["test_accuracy"])
    assert again["test_accuracy"] == pytest.approx(stored["test_accuracy"], abs=1e-6)
    assert again["confusion_matrix"] == stored["confusion_matrix"]
    assert sum(c["support"] for c in stored["per_class"]) == 360


def test_predict_real_photos_and_reports_bad_files(trained_run, tmp_path):
    skimage_data = pytest.importorskip("skimage.data")
    runs_dir, result = trained_run
    cat = tmp_path / "cat.jpg"
    Image.fromarray(skimage_data.chelsea()).save(cat)
    digit = tmp_path / "digit.png"
    canvas = np.zeros((200, 200), np.uint8)
    canvas[40:160, 90:110] = 255  # a white "1" on black
    Image.fromarray(canvas).save(digit)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    proc = cli("predict", result["run_id"], str(cat), str(digit), str(notes), "--top-k", "2",
               "--runs-dir", str(runs_dir), "--json")
    assert proc.returncode == 2  # one file was bad; the others were still classified
    predictions = {Path(p["image"]).name: p for p in last_json(proc)["predictions"]}
    for name in ("cat.jpg", "digit.png"):
        assert len(predictions[name]["labels"]) == 2
        assert predictions[name]["labels"][0] in [str(i) for i in range(10)]
        assert predictions[name]["probabilities"][0] >= predictions[name]["probabilities"][1]
    assert "not an image" in predictions["notes.png"]["error"]
