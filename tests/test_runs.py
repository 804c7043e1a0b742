"""The run store: atomic files, torn reads, liveness, interrupted runs, refusals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cnn import runs
from cnn.config import preset
from cnn.errors import RunError


def _params():
    return preset("fast", dataset="digits", epochs=1, train_size=100)


def test_atomic_write_leaves_old_content_and_no_temp_file_on_failure(tmp_path):
    path = tmp_path / "status.json"
    runs.atomic_write_json(path, {"state": "running"})
    with pytest.raises(TypeError):
        runs.atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_read_json_tolerates_missing_and_damaged_files(tmp_path):
    assert runs.read_json(tmp_path / "nope.json", default={}) == {}
    (tmp_path / "bad.json").write_text('{"state": "runn')
    assert runs.read_json(tmp_path / "bad.json") is None


def test_metrics_reader_waits_for_a_torn_last_line_and_skips_garbage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    reader = runs.JsonLinesReader(path)
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


def _hold_lock_in_subprocess(path):
    code = textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_run_whose_worker_died_is_marked_interrupted(tmp_path):
    run = runs.create_run(_params(), tmp_path / "r", start=False)
    run.update_status(state=runs.RUNNING, epochs_completed=2)
    worker = _hold_lock_in_subprocess(run.lock_path)
    try:
        assert run.is_alive()
        assert run.state() == runs.RUNNING
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert not run.is_alive()
    status = run.status()
    assert status["state"] == runs.INTERRUPTED
    assert "ended unexpectedly" in status["message"]
    assert status["epochs_completed"] == 2
    # Final: reading again does not change it.
    assert run.status() == status


def test_stop_and_learning_rate_requests(tmp_path):
    run = runs.create_run(_params(), tmp_path / "r", start=False)
    worker = _hold_lock_in_subprocess(run.lock_path)
    try:
        run.update_status(state=runs.RUNNING)
        run.set_learning_rate(0.005)
        run.request_stop()
        assert run.control() == {"learning_rate": 0.005, "stop": True}
        with pytest.raises(RunError, match="above 0"):
            run.set_learning_rate(-1)
        with pytest.raises(RunError, match="still training"):
            runs.delete_run(run)
    finally:
        worker.kill()
        worker.wait()
    run.update_status(state=runs.FINISHED)
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
    from cnn.processes import spawn_detached, take_lock

    fd = take_lock(tmp_path / "lock")
    process = spawn_detached("json.tool", ["--help"], fd, tmp_path / "log")
    os.close(fd)
    deadline = time.monotonic() + 30
    while process.returncode is None and time.monotonic() < deadline:
        time.sleep(0.02)  # the reaper thread sets returncode once it has waited
    assert process.returncode is not None
    assert not Path(f"/proc/{process.pid}").exists()  # no zombie entry left
