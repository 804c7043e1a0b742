"""Installing a dataset in the background: a job (see `cnn.jobs`) whose worker downloads
what is missing of it, with its progress on disk for the Data page to poll.

Its progress is short-lived state, not data: the job folder is in the system's temporary
folder (one per data folder), so the data folder only ever holds whole datasets. The
transfer itself is `cnn.datasets.install` (temp file + checksum + rename), so an install
that is cancelled or killed leaves no file behind.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from cnn import datasets, jobs
from cnn.errors import CnnError, DatasetError
from cnn.processes import ProcessId
from cnn.jobs import (ACTIVE_STATES, FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED, Job,
                      StatusWriter)

__all__ = ["ACTIVE_STATES", "FAILED", "FINISHED", "INTERRUPTED", "RUNNING", "STOPPED",
           "status", "start", "cancel", "work"]

_FOLDER = "cnn-playground-installs"


class Cancelled(Exception):
    pass


def _job(name: str, data_dir: str | Path | None = None) -> Job | None:
    target = datasets.writable_data_dir(data_dir)
    if target is None:
        return None
    where = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:12]
    return Job(Path(tempfile.gettempdir()) / _FOLDER / where / name)


def status(name: str, data_dir: str | Path | None = None) -> dict[str, Any] | None:
    """{"state", "done", "total", "message"} of the latest install of `name`, or None."""
    job = _job(name, data_dir)
    if job is None or not job.path.is_dir():
        return None
    return job.status()


def start(name: str, data_dir: str | Path | None = None) -> None:
    """Start installing `name` in the background, unless it is already being installed."""
    info = datasets.get_info(name, data_dir)  # unknown names fail here, readably
    if not info.files:
        raise DatasetError(f"{info.title} cannot be downloaded.")
    job = _job(name, data_dir)
    if job is None:
        datasets.install(name, data_dir)  # raises the readable "cannot be written" error
        return
    if job.path.is_dir():
        if job.state() in ACTIVE_STATES:
            return  # an install of it is under way
        jobs.delete_job(job)
    job = jobs.create_job(job.root, name, {}, {
        "state": RUNNING, "done": 0, "total": None, "message": "Starting…",
        "dataset": name, "data_dir": str(data_dir) if data_dir else None},
        starter=ProcessId.current())
    jobs.executor.start(job, "install")


def cancel(name: str, data_dir: str | Path | None = None) -> None:
    """Ask a background install to stop; it removes its partial file."""
    job = _job(name, data_dir)
    if job is not None and job.path.is_dir() and job.state() in ACTIVE_STATES:
        job.request(stop=True)


def work(job: Job) -> None:
    """The worker's side: install, reporting progress ~5 times a second; never raises."""
    writer = StatusWriter(job)
    name, data_dir = writer.fields.get("dataset"), writer.fields.get("data_dir")
    last_write = 0.0

    def progress(done: int, total: int | None) -> None:
        nonlocal last_write
        if job.control().get("stop"):
            raise Cancelled
        now = time.monotonic()
        if now - last_write >= 0.2:
            last_write = now
            writer.update(done=done, total=total, message="Downloading…")

    try:
        path = datasets.install(name, data_dir, progress=progress)
    except Cancelled:
        writer.update(state=STOPPED, message="Download cancelled.", finished=time.time())
    except CnnError as error:
        writer.update(state=FAILED, message=str(error), finished=time.time())
    except Exception as error:  # a bug: one line for the UI, the traceback in the log
        traceback.print_exc()
        writer.update(state=FAILED, message=f"Download failed: {error}", finished=time.time())
    else:
        writer.update(state=FINISHED, message=f"Saved as {path.name}.", finished=time.time())
