"""Data page, run through the real app with AppTest."""

import io
import time

import numpy as np
import pyarrow as pa
import pytest

import support
from app_pages import common
from cnn import datasets, install_jobs

PAGE = "app_pages/data.py"


@pytest.fixture(autouse=True)
def only_digits(tmp_path, monkeypatch):
    """Nothing on disk but scikit-learn's digits, even where CI has real data."""
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))


def texts(at) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.info, *at.warning, *at.caption])


def test_missing_cifar10_is_explained_and_offers_a_download():
    at = support.open_page(PAGE)
    assert at.selectbox(key="data_dataset").value == "cifar10"  # the default
    assert "CIFAR-10 is not on this computer yet" in texts(at)
    assert at.button(key="start_download").label == "Download CIFAR-10"
    assert not at.get("image")  # no samples of a dataset that is not here


def test_offline_download_names_the_file_and_offers_what_is_on_disk(tmp_path):
    at = support.open_page(PAGE)
    at.button(key="start_download").click().run()
    # The download runs in its own process; offline it fails at once. Wait for that on
    # disk, then let the page's polling fragment show it.
    deadline = time.monotonic() + 60
    while (install_jobs.status("cifar10") or {}).get("state") in install_jobs.ACTIVE_STATES:
        assert time.monotonic() < deadline, install_jobs.status("cifar10")
        time.sleep(0.05)
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("cifar-10-python.tar.gz" in w and "Put " in w for w in warnings), warnings
    assert "Datasets already on this computer: Digits (scikit-learn)" in texts(at)
    assert not list((tmp_path / "no-data").rglob("*"))  # nothing half-written


def test_digits_shows_samples_balance_and_pixel_statistics():
    at = support.open_page(PAGE)
    at.selectbox(key="data_dataset").set_value("digits").run()
    assert not at.exception
    assert at.session_state[common.DATASET] == "digits"  # kept for the Train page
    assert [s.value for s in at.subheader] == [
        "Samples per class", "Class balance", "Pixels before and after scaling"]
    # One row of samples per class, labelled with the class name.
    class_labels = [m.value for m in at.markdown if m.value.startswith("**") and
                    m.value.strip("*") in datasets.get_info("digits").class_names]
    assert class_labels == [f"**{d}**" for d in "0123456789"]
    # Pixel statistics: an oracle computed here from the same data.
    data = datasets.load("digits")
    table = at.dataframe[0].value
    assert table.loc["stored (0…255)", "max"] == data.x_train.max() == 255
    assert table.loc["scaled (0…1)", "max"] == 1.0
    assert table.loc["scaled (0…1)", "mean"] == pytest.approx(
        data.x_train.astype(np.float64).mean() / 255)
    # The class-balance chart holds the real counts of both sets.
    [chart] = at.get("vega_lite_chart")
    frame = pa.ipc.open_stream(io.BytesIO(chart.proto.datasets[0].data.data)).read_all()
    counts = frame.to_pandas().set_index(["set", "class"])["images"]
    assert counts["train"].tolist() == np.bincount(data.y_train, minlength=10).tolist()
    assert counts["test"].sum() == 360 and counts["train"].sum() == 1437


def test_the_choice_carries_to_the_train_page():
    at = support.open_page(PAGE)
    at.selectbox(key="data_dataset").set_value("digits").run()
    at.switch_page(common.TRAIN).run()
    assert not at.exception
    assert at.selectbox(key="train_dataset").value == "digits"
