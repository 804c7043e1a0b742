"""End-to-end: the tutorial network really learns real images, trained from the CLI."""

import pytest

from test_cli import cli, last_json  # noqa: E402

pytestmark = pytest.mark.slow


def test_tutorial_preset_learns_fashion_mnist_in_one_epoch(real_data_dir, tmp_path):
    proc = cli("train", "--dataset", "fashion_mnist", "--epochs", "1", "--runs-dir",
               str(tmp_path), "--json", check_code=0)
    result = last_json(proc)
    print(result)
    assert result["status"] == "finished" and result["epochs_completed"] == 1
    # A sound pipeline reaches ~85 % after one epoch of the tutorial net.
    assert result["test_accuracy"] >= 0.83


def test_tutorial_preset_learns_digits(tmp_path):
    proc = cli("train", "--dataset", "digits", "--runs-dir", str(tmp_path), "--json",
               check_code=0)
    result = last_json(proc)
    print(result)
    assert result["status"] == "finished" and result["epochs_completed"] == 10
    assert result["test_accuracy"] >= 0.90
