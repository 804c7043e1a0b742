"""Work that runs in its own process: a training run, a dataset download, what comes next.

A job is a folder:
    status.json    state + message + timings, written only by the job's worker (atomically)
    control.json   requests to the worker (stop, a new learning rate...), read-modify-written
                   under a lock so two browsers never overwrite each other's request
    worker.json    which process works on it (pid + start time), written when it is handed over
    worker.log     that process's own output (tracebacks of bugs land here)

Reading a job never writes: a job left in an active state whose worker is gone is *seen* as
interrupted by every reader (derived from the worker's liveness), and a damaged status file
is seen as damaged. Jobs wait in a queue for a slot (`Slots`): one at a time unless
$CNN_PARALLEL_RUNS says more. Everything is cross-platform: psutil for liveness, filelock
for the short critical sections, no file descriptor passing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import filelock

from cnn.errors import RunError
from cnn.processes import ProcessId, spawn_detached
from cnn.store import DamagedFile, atomic_write_json, read_json, read_json_object, \
    storage_error

QUEUED, RUNNING, PAUSED, STOPPING = "queued", "running", "paused", "stopping"
STOPPED, FINISHED, FAILED, INTERRUPTED = "stopped", "finished", "failed", "interrupted"
DAMAGED = "damaged"  # its status file cannot be read and no worker is there to rewrite it
ACTIVE_STATES = (QUEUED, RUNNING, PAUSED, STOPPING)
FINAL_STATES = (STOPPED, FINISHED, FAILED, INTERRUPTED, DAMAGED)

# status.json fields that must be numbers when present: a wrong type is dropped on reading
# (and reported as a problem), so one damaged field never breaks a page.
_NUMBER_FIELDS = ("created", "started", "finished", "epochs_completed", "test_loss",
                  "test_accuracy", "train_images_per_second", "train_seconds", "fit_seconds",
                  "train_images", "val_images", "epochs_planned")
_LOCK_TIMEOUT_S = 10.0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        value == value and value not in (float("inf"), float("-inf"))


def clean_status(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The status with wrongly typed fields dropped, and what was wrong with them."""
    status, problems = dict(raw), []
    if not isinstance(status.get("state"), str) or status["state"] not in (
            *ACTIVE_STATES, *FINAL_STATES):
        problems.append(f"its state {status.get('state')!r} is not one we know")
        status.pop("state", None)
    if "message" in status and not isinstance(status["message"], str):
        problems.append("its message is not text")
        status.pop("message")
    for key in _NUMBER_FIELDS:
        if key in status and status[key] is not None and not _is_number(status[key]):
            problems.append(f"{key} is {status[key]!r}, not a number")
            status.pop(key)
    return status, problems


_STATUS_CACHE: dict[tuple, dict[str, Any]] = {}


def _parse_status(path: Path) -> dict[str, Any]:
    try:
        status, problems = clean_status(read_json_object(path))
    except FileNotFoundError:
        return {"problem": "its status.json is missing"}
    except DamagedFile as error:
        return {"problem": str(error)}
    if problems:
        status["problem"] = "status.json: " + "; ".join(problems)
    return status


@dataclass(frozen=True)
class Job:
    """A job folder. Cheap to create; every accessor reads the disk afresh."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def root(self) -> Path:
        return self.path.parent

    status_path = property(lambda self: self.path / "status.json")
    control_path = property(lambda self: self.path / "control.json")
    worker_path = property(lambda self: self.path / "worker.json")
    log_path = property(lambda self: self.path / "worker.log")

    # liveness --------------------------------------------------------------------------
    def worker(self) -> ProcessId | None:
        return ProcessId.from_dict(read_json(self.worker_path))

    def version(self) -> tuple:
        """Changes whenever what `status()` would say changes: the status file's version,
        and for an active job whether its worker still runs. Cheap: one stat (and one
        process lookup while active), for pages that poll for changes."""
        try:
            stat = os.stat(self.status_path)
        except OSError:
            return (self.id, None)
        active = self.raw_status().get("state") in ACTIVE_STATES
        return (self.id, stat.st_ino, stat.st_mtime_ns, active and self.is_alive())

    def is_alive(self) -> bool:
        """Whether the process recorded as its worker runs (psutil, pid + start time)."""
        worker = self.worker()
        return worker is not None and worker.is_running()

    # status ----------------------------------------------------------------------------
    def raw_status(self) -> dict[str, Any]:
        """status.json as written, wrongly typed fields dropped; {"problem": ...} added when
        it is missing, damaged or partly wrong."""
        try:
            stat = os.stat(self.status_path)
        except FileNotFoundError:
            return {"problem": "its status.json is missing"}
        except OSError as error:
            return {"problem": f"its status.json cannot be read ({error.strerror})"}
        # Every write is a new file renamed into place (a new inode), so (inode, mtime, size)
        # names one version: thirty browsers polling share one parse per version.
        version = (str(self.status_path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = _STATUS_CACHE.get(version)
        if cached is None:
            cached = _parse_status(self.status_path)
            if len(_STATUS_CACHE) > 4096:
                _STATUS_CACHE.clear()
            _STATUS_CACHE[version] = cached
        return dict(cached)

    def status(self) -> dict[str, Any]:
        """What is true now: the written status, unless its worker is gone (interrupted) or
        the file is damaged. Never writes."""
        status = self.raw_status()
        state = status.get("state")
        if state is None:
            if self.is_alive():  # damaged mid-run: its worker rewrites it at the next update
                return {**status, "state": RUNNING,
                        "message": status.get("message") or "Working… (its status file was "
                        "damaged and is rewritten at the next update)"}
            return {**status, "state": DAMAGED,
                    "message": f"This folder is damaged: {status.get('problem')}."}
        if state in ACTIVE_STATES and not self.is_alive():
            # The worker may have written its final state just before exiting: read again.
            status = self.raw_status()
            if status.get("state") in ACTIVE_STATES:
                return {**status, "state": INTERRUPTED, "was": status["state"],
                        "message": self.interrupted_message(status["state"])}
        return status

    def interrupted_message(self, was: str) -> str:
        return ("The process doing this ended unexpectedly (server stopped or machine "
                "restarted)" + (" before it started." if was == QUEUED else "."))

    def state(self) -> str:
        return self.status()["state"]

    # control ---------------------------------------------------------------------------
    def control(self) -> dict[str, Any]:
        data = read_json(self.control_path)
        return data if isinstance(data, dict) else {}

    def request(self, **changes: Any) -> dict[str, Any]:
        """Merge `changes` into control.json under a lock (two requests from two browsers at
        the same moment both land) and bump its sequence number, which the worker watches
        (a file's modification time cannot tell two writes within its granularity apart)."""
        try:
            with filelock.FileLock(str(self.path / ".control.lock"), timeout=_LOCK_TIMEOUT_S):
                control = self.control()
                control.update(changes)
                control["seq"] = int(control.get("seq") or 0) + 1
                atomic_write_json(self.control_path, control)
                return control
        except filelock.Timeout:
            raise RunError(f"{self.id} is busy; try again in a moment.") from None
        except OSError as error:
            raise storage_error(error, self.control_path) from error

    def request_stop(self) -> None:
        """Ask the worker to stop (a training run keeps and evaluates what it has learnt)."""
        if self.state() not in ACTIVE_STATES:
            raise RunError(f"{self.id} is not running, so there is nothing to stop.")
        self.request(stop=True, stop_requested_at=time.time())

    def force_stop(self) -> None:
        """End the worker process now (for a worker that does not answer a stop request)."""
        worker = self.worker()
        if worker is not None:
            worker.kill()


class StatusWriter:
    """The one writer of a job's status: keeps the whole status in memory and writes it all
    each time, so a status file damaged on disk is repaired by the next update."""

    def __init__(self, job: Job, initial: dict[str, Any] | None = None):
        self.job = job
        if initial is None:
            initial = job.raw_status()
            initial.pop("problem", None)
        self.fields = dict(initial)

    def update(self, **fields: Any) -> dict[str, Any]:
        self.fields.update(fields)
        atomic_write_json(self.job.status_path, self.fields)
        return dict(self.fields)


# --- making jobs --------------------------------------------------------------------------
def new_job_id(*parts: str) -> str:
    return "-".join([time.strftime("%Y%m%d-%H%M%S"), *parts, secrets.token_hex(2)])


def create_job(root: Path, job_id: str, files: dict[str, Any], status: dict[str, Any],
               starter: ProcessId | None = None) -> Job:
    """Make the folder `root/job_id` with `files` (name -> JSON) and its first status, all at
    once: it is built under a hidden name and renamed, so a job is never seen half-made.

    `starter` (the process that is about to start its worker, usually this one) stands in
    as its worker until `executor.start` records the real one: an active job is never
    without a live process, and if the starter dies first, the job is seen interrupted.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = root / f".{job_id}.new"
        staging.mkdir()
    except OSError as error:
        raise storage_error(error, root / job_id, "create") from error
    try:
        for name, content in files.items():
            atomic_write_json(staging / name, content)
        atomic_write_json(staging / "status.json", {"created": time.time(), **status})
        if starter is not None:
            atomic_write_json(staging / "worker.json", starter.to_dict())
        os.replace(staging, root / job_id)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise storage_error(error, root / job_id, "create") from error
        raise
    return Job(root / job_id)


def delete_job(job: Job) -> None:
    """Remove a job folder for good (refused while it is active)."""
    if job.state() in ACTIVE_STATES:
        raise RunError(f"{job.id} is still running; stop it before deleting it.")
    # Rename first so a half-deleted folder never shows up as a job.
    trash = job.root / f".{job.id}.deleted-{secrets.token_hex(2)}"
    try:
        os.replace(job.path, trash)
    except FileNotFoundError:
        raise RunError(f"{job.id} was already deleted.") from None
    except OSError as error:
        raise storage_error(error, job.path, "delete") from error
    shutil.rmtree(trash, ignore_errors=True)


def list_job_paths(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []


# --- executing them -----------------------------------------------------------------------
class ProcessExecutor:
    """Runs each job in a new detached process: `python -m cnn.worker KIND JOB_DIR`.

    The one place that starts workers: another executor (a pool of warm workers, a cluster)
    can take its place without the pages or the CLI noticing.
    """

    def start(self, job: Job, kind: str, env: dict[str, str] | None = None,
              warm: bool = False) -> ProcessId:
        """Start `job`'s worker and record which process it is (worker.json). With `warm`
        (a training run that can start at once), a warm worker takes it if one is ready."""
        from cnn import warm_workers

        try:
            worker = warm_workers.claim(job.root, job.path, env) if warm else None
            if worker is None:
                worker = spawn_detached("cnn.worker", [kind, str(job.path)], job.log_path,
                                        env)
            atomic_write_json(job.worker_path, worker.to_dict())
        except OSError as error:
            raise storage_error(error, job.worker_path, "start the worker for") from error
        return worker


executor = ProcessExecutor()


# --- the queue and the slots --------------------------------------------------------------
class Queue:
    """Jobs waiting for a slot, first come first served; one folder of tiny entry files
    (`<created>-<job id>`), so "who is first?" lists a few names, not every job."""

    def __init__(self, root: Path, slot_count: int):
        self.folder = root / ".queue"
        self.slot_folder = root / ".slots"
        self.slot_count = max(1, slot_count)
        self.lock = filelock.FileLock(str(root / ".queue.lock"), timeout=_LOCK_TIMEOUT_S)

    def enter(self, job: Job, created: float) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{created:017.6f}-{job.id}").touch()

    def leave(self, job: Job) -> None:
        for entry in self._entries():
            if entry.name.split("-", 1)[1] == job.id:
                entry.unlink(missing_ok=True)

    def _entries(self) -> list[Path]:
        try:
            return sorted(self.folder.iterdir())
        except OSError:
            return []

    def waiting(self) -> list[Job]:
        """Jobs in line, first first; entries of jobs whose worker is gone are skipped."""
        jobs = []
        for entry in self._entries():
            job = Job(self.folder.parent / entry.name.split("-", 1)[1])
            if job.path.is_dir() and job.is_alive() and \
                    job.raw_status().get("state") == QUEUED:
                jobs.append(job)
        return jobs

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after...; None if not in line."""
        ids = [j.id for j in self.waiting()]
        return ids.index(job.id) + 1 if job.id in ids else None

    def busy_slots(self) -> list[str]:
        """Ids of the jobs holding a slot now (whose worker is alive)."""
        holders = []
        for i in range(self.slot_count):
            holder = read_json(self.slot_folder / f"slot-{i}.json")
            if isinstance(holder, dict) and _holder_alive(holder):
                holders.append(str(holder.get("job")))
        return holders

    def claim(self, job: Job) -> int | None:
        """Take a free slot for `job` if it is first in line; the slot number, or None.

        Under the queue lock, so two workers never take the same slot. A slot is free when
        nobody holds it or its holder's process is gone (kill -9, reboot).
        """
        try:
            with self.lock:
                if self.position(job) != 1:
                    return None
                self.slot_folder.mkdir(parents=True, exist_ok=True)
                for i in range(self.slot_count):
                    path = self.slot_folder / f"slot-{i}.json"
                    holder = read_json(path)
                    if isinstance(holder, dict) and _holder_alive(holder):
                        continue
                    atomic_write_json(path, {"job": job.id,
                                             "worker": ProcessId.current().to_dict()})
                    self.leave(job)
                    return i
        except filelock.Timeout:
            return None
        return None

    def release(self, slot: int) -> None:
        (self.slot_folder / f"slot-{slot}.json").unlink(missing_ok=True)


def _holder_alive(holder: dict) -> bool:
    worker = ProcessId.from_dict(holder.get("worker"))
    return worker is not None and worker.is_running()


def wait_for_slot(job: Job, queue: Queue, stop_requested: Callable[[], bool],
                  poll_seconds: float = 0.2) -> int | None:
    """Block until `job` may start: first in line and a slot free. The slot, or None if a
    stop was requested while waiting."""
    while True:
        if stop_requested():
            queue.leave(job)
            return None
        slot = queue.claim(job)
        if slot is not None:
            return slot
        time.sleep(poll_seconds)


def parallel_slots() -> int:
    try:
        return max(1, int(os.environ.get("CNN_PARALLEL_RUNS", "1")))
    except ValueError:
        return 1

