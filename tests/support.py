"""Helpers shared by the tests: open a page of the real app, wait for a run on disk."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cnn import jobs, runs
from cnn.processes import ProcessId
from cnn.store import atomic_write_json

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def real_data_folder() -> Path:
    """The folder holding the real Fashion-MNIST files (as in Keras's cache): $CNN_DATA_DIR
    or ../shared/datasets. Skips where neither has them (a user's clone); CI sets
    CNN_REQUIRE_REAL_DATA, so there a missing folder fails instead of silently skipping."""
    import pytest

    candidates = [Path(p) for p in [os.environ.get("CNN_DATA_DIR"), SHARED_DATASETS] if p]
    for folder in candidates:
        if (folder / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists():
            return folder
    message = f"real Fashion-MNIST not found (looked in {', '.join(map(str, candidates))})"
    if os.environ.get("CNN_REQUIRE_REAL_DATA"):
        pytest.fail(message)
    pytest.skip(message)


def open_page(page: str, timeout: float = 120) -> AppTest:
    """The real app (streamlit_app.py and its navigation), switched to `page`."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=timeout)
    at.run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def wait_for(run: runs.Run, states, timeout: float = 180) -> dict:
    """Poll the run's status until it is in `states`; its worker log on time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.status()
        if status["state"] in states:
            return status
        time.sleep(0.05)
    log = run.log_path.read_text() if run.log_path.exists() else "(no log)"
    raise AssertionError(f"run stayed {run.status()}; log: {log}")


def wait_for_batches(run: runs.Run, count: int, timeout: float = 180) -> None:
    """Poll the run's metrics until `count` batch records are there (it must be active)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(r["kind"] == "batch" for r in run.metrics()) >= count:
            return
        assert run.state() in runs.ACTIVE_STATES, run.status()
        time.sleep(0.02)
    raise AssertionError("no batches recorded")


def wait_for_record(run: runs.Run, matches, timeout: float = 180) -> dict:
    """Poll the run's metrics until a record satisfies `matches`; that record."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((r for r in run.metrics() if matches(r)), None)
        if found is not None:
            return found
        assert run.state() in runs.ACTIVE_STATES, run.status()
        time.sleep(0.02)
    raise AssertionError(f"no such record; last: {run.metrics()[-3:]}")


def set_status(job: jobs.Job, **fields) -> dict:
    """Write a job's status as its worker would (the one writer of status.json)."""
    return jobs.StatusWriter(job).update(**fields)


@contextlib.contextmanager
def playing_worker(job: jobs.Job, slot: int | None = None):
    """A real, idle process recorded as `job`'s worker (and, with `slot`, holding that
    training slot), so the job counts as alive; killed at the end of the block, after
    which every reader sees the job's worker gone."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        worker = ProcessId.of(process.pid)
        atomic_write_json(job.worker_path, worker.to_dict())
        if slot is not None:
            folder = job.root / ".slots"
            folder.mkdir(exist_ok=True)
            atomic_write_json(folder / f"slot-{slot}.json",
                              {"job": job.id, "worker": worker.to_dict()})
        yield process
    finally:
        process.kill()
        process.wait()
