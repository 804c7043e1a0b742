"""Helpers shared by the tests: open a page of the real app, wait for a run on disk."""

import contextlib
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cnn import jobs, runs
from cnn.processes import ProcessId
from cnn.store import atomic_write_json

REPO = Path(__file__).resolve().parent.parent


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
