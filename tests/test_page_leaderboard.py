"""The Leaderboard page, through the real app with AppTest."""

import io

import pyarrow as pa
import pytest

import support
from cnn import leaderboard, runs
from cnn.presets import preset

PAGE = "app_pages/leaderboard.py"


@pytest.fixture(autouse=True)
def only_digits(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))


def finished(owner, accuracy, **changes):
    params = preset("fast", dataset="digits", **changes)
    run = runs.create_run(params, start=False, extra_status={
        "owner": owner, "owner_id": owner.lower(), "preset": "fast",
        "name": f"{owner} · Digits · fast #1"})
    support.set_status(run, state=runs.FINISHED, message="Finished.", test_accuracy=accuracy,
                       fit_seconds=12.0)
    return run


def test_runs_rank_by_test_accuracy_with_what_they_changed():
    finished("Alex", 0.91, learning_rate=0.01)
    finished("Sam", 0.97, epochs=5)
    finished("Kim", 0.60, learning_rate=0.0001, epochs=3)
    live = runs.create_run(preset("fast", dataset="digits"), start=False)  # not finished
    support.set_status(live, state=runs.FAILED, message="Failed.")
    at = support.open_page(PAGE)
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["Who"]) == ["Sam", "Alex", "Kim"]
    assert list(table["Test accuracy"]) == pytest.approx([97.0, 91.0, 60.0])
    assert list(table["Changed"]) == ["epochs 5", "learning rate 0.01",
                                      "learning rate 0.0001, epochs 3"]
    # The chart: test accuracy against the learning rate, one dot per run.
    [chart] = at.get("vega_lite_chart")
    points = pa.ipc.open_stream(io.BytesIO(chart.proto.datasets[0].data.data)).read_pandas()
    assert sorted(zip(points["value"], points["test_accuracy"])) == [
        (0.0001, 0.6), (0.002, 0.97), (0.01, 0.91)]
    at.segmented_control(key="leaderboard_knob").set_value("epochs").run()
    [chart] = at.get("vega_lite_chart")
    points = pa.ipc.open_stream(io.BytesIO(chart.proto.datasets[0].data.data)).read_pandas()
    assert sorted(points["value"]) == [2, 3, 5]


def test_runs_from_before_presets_were_recorded_are_compared_with_the_closest():
    run = runs.create_run(preset("efficient", dataset="digits", epochs=3), start=False)
    support.set_status(run, state=runs.STOPPED, message="Stopped.", test_accuracy=0.5)
    [entry] = leaderboard.entries("digits")
    assert (entry.preset, entry.changes, entry.owner) == ("efficient", "epochs 3", "—")


def test_an_empty_leaderboard_says_how_it_fills():
    at = support.open_page(PAGE)
    assert "the leaderboard fills as the class trains" in at.info[0].value
