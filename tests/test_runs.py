"""The run store: atomic files, torn reads, liveness, interrupted runs, refusals."""

import json
import time

import pytest

import support
from cnn import runs, store
from cnn.presets import preset
from cnn.errors import RunError


def _params():
    return preset("fast", dataset="digits", epochs=1, train_size=100)


def test_atomic_write_leaves_old_content_and_no_temp_file_on_failure(tmp_path):
    path = tmp_path / "status.json"
    store.atomic_write_json(path, {"state": "running"})
    with pytest.raises(TypeError):
        store.atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_read_json_tolerates_missing_and_damaged_files(tmp_path):
    assert store.read_json(tmp_path / "nope.json", default={}) == {}
    (tmp_path / "bad.json").write_text('{"state": "runn')
    assert store.read_json(tmp_path / "bad.json") is None


def test_metrics_reader_waits_for_a_torn_last_line_and_skips_garbage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = store.JsonLinesReader(path)
    assert reader.read() == []
    path.write_text('{"step": 1}\n{"step": 2}\n{"st')
    assert [r["step"] for r in reader.read()] == [1, 2]
    with open(path, "a") as f:
        f.write('ep": 3}\nnot json\n[1, 2]\n{"step": 4}\n')
    assert [r["step"] for r in reader.read()] == [1, 2, 3, 4]
    assert reader.read() is reader.records  # nothing new: nothing re-parsed


def test_a_run_folder_is_complete_when_visible(tmp_path):
    run = runs.create_run(_params(), tmp_path / "r", start=False)
    assert runs.get_run(run.id, tmp_path / "r") == run
    assert run.config == _params()
    assert run.raw_status()["state"] == runs.QUEUED
    assert [p.name for p in (tmp_path / "r").iterdir()] == [run.id]


def test_create_run_validates_before_making_anything(tmp_path):
    from cnn.errors import ConfigError, DatasetError

    with pytest.raises(ConfigError):
        runs.create_run(_params().replace(batch_size=0), tmp_path / "r")
    with pytest.raises(DatasetError):
        runs.create_run(_params().replace(dataset="imagenet"), tmp_path / "r")
    assert runs.list_runs(tmp_path / "r") == []


def test_a_run_whose_worker_died_is_marked_interrupted(tmp_path):
    run = runs.create_run(_params(), tmp_path / "r", start=False)
    support.set_status(run, state=runs.RUNNING, epochs_completed=2)
    with support.playing_worker(run):
        assert run.is_alive()
        assert run.state() == runs.RUNNING
    assert not run.is_alive()
    status = run.status()
    assert status["state"] == runs.INTERRUPTED
    assert "ended unexpectedly" in status["message"]
    assert status["epochs_completed"] == 2
    # Final: reading again does not change it.
    assert run.status() == status


def test_stop_and_learning_rate_requests(tmp_path):
    run = runs.create_run(_params(), tmp_path / "r", start=False)
    with support.playing_worker(run):
        support.set_status(run, state=runs.RUNNING)
        run.set_learning_rate(0.005)
        run.request_stop()
        control = run.control()
        assert control["learning_rate"] == 0.005 and control["stop"] is True
        with pytest.raises(RunError, match="above 0"):
            run.set_learning_rate(-1)
        with pytest.raises(RunError, match="still training"):
            runs.delete_run(run)
    support.set_status(run, state=runs.FINISHED)
    with pytest.raises(RunError, match="nothing to stop"):
        run.request_stop()
    runs.delete_run(run)
    assert runs.list_runs(tmp_path / "r") == []


@pytest.mark.parametrize("bad_id", ["", "nope", "../etc", ".hidden"])
def test_unknown_run_ids_are_refused(tmp_path, bad_id):
    (tmp_path / "r").mkdir()
    with pytest.raises(RunError, match="There is no run"):
        runs.get_run(bad_id, tmp_path / "r")


def test_runs_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert runs.runs_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("CNN_RUNS_DIR")
    assert runs.runs_dir() == runs.Path("runs")


def test_finished_workers_are_reaped_not_left_as_zombies(tmp_path):
    import psutil

    from cnn.processes import spawn_detached

    worker = spawn_detached("json.tool", ["--help"], tmp_path / "log")
    deadline = time.monotonic() + 30
    while psutil.pid_exists(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # the reaper thread waits for it; then its pid is gone
    assert not psutil.pid_exists(worker.pid)  # no zombie entry left
    assert not worker.is_running()
