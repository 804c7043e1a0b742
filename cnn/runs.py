"""Training runs on disk: one folder per run, visible to every process that looks.

A run folder holds
    config.json        the HyperParams (written once)
    status.json        state + message + timings (atomic writes)
    control.json       requests from a UI or CLI: stop, a new learning rate (atomic writes)
    metrics.jsonl      one JSON record per line, appended by the training callback
    model.keras        the latest model (saved after every epoch, atomically)
    history.csv        per-epoch metrics
    evaluation.json    test loss/accuracy, confusion matrix, per-class report
    predictions.npz    per test image: predicted class and confidence
    worker.log         the worker process's own output (tracebacks of bugs land here)
    .alive.lock        held (flock) by the run's worker process for its whole life

The worker process (`python -m cnn.worker`) is spawned by `create_run` and holds the run's
lock from before the run is visible until it exits, so "is the worker alive?" is a
non-blocking lock probe: it survives pid reuse and reboots, and a worker killed with -9
releases its lock too. A run left in an active state with nobody holding its lock is
marked `interrupted` by whoever reads it next.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn.config import HyperParams
from cnn.errors import RunError
from cnn.processes import lock_held, spawn_detached, take_lock

RUNS_DIR_ENV = "CNN_RUNS_DIR"
PARALLEL_RUNS_ENV = "CNN_PARALLEL_RUNS"

QUEUED, RUNNING, STOPPING = "queued", "running", "stopping"
STOPPED, FINISHED, FAILED, INTERRUPTED = "stopped", "finished", "failed", "interrupted"
ACTIVE_STATES = (QUEUED, RUNNING, STOPPING)
FINAL_STATES = (STOPPED, FINISHED, FAILED, INTERRUPTED)


def runs_dir(path: str | Path | None = None) -> Path:
    """The runs folder: `path`, else $CNN_RUNS_DIR, else ./runs."""
    return Path(path or os.environ.get(RUNS_DIR_ENV) or "runs")


# --- atomic files ------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: readers see old or new, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON, or `default` if missing or unreadable (a damaged file never crashes)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


class JsonLinesReader:
    """Incremental reader of an append-only JSON-lines file.

    Only complete lines are consumed; a half-written last line is left for the next call,
    and a line that is not valid JSON is skipped. Re-reading costs only the new bytes.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return self.records
        end = chunk.rfind(b"\n")
        if end < 0:
            return self.records
        for line in chunk[: end + 1].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.records.append(record)
        self.offset += end + 1
        return self.records


# --- runs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """A run folder. Cheap to create; every accessor reads the disk afresh."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def root(self) -> Path:
        return self.path.parent

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    control_path = property(lambda self: self.path / "control.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    model_path = property(lambda self: self.path / "model.keras")
    history_path = property(lambda self: self.path / "history.csv")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    predictions_path = property(lambda self: self.path / "predictions.npz")
    log_path = property(lambda self: self.path / "worker.log")
    lock_path = property(lambda self: self.path / ".alive.lock")

    @property
    def config(self) -> HyperParams:
        data = read_json(self.config_path)
        if data is None:
            raise RunError(f"Run {self.id} has no readable config.json.")
        return HyperParams.from_dict(data)

    # status ------------------------------------------------------------------------------
    def raw_status(self) -> dict[str, Any]:
        return read_json(self.status_path) or {"state": INTERRUPTED,
                                               "message": "The run's status file is missing."}

    def status(self) -> dict[str, Any]:
        """The status, after marking the run interrupted if its worker died."""
        status = self.raw_status()
        if status.get("state") in ACTIVE_STATES and not self.is_alive():
            # Re-read: the worker may have written its final state just before exiting.
            status = self.raw_status()
            if status.get("state") in ACTIVE_STATES:
                was = status.get("state")
                status = self.update_status(
                    state=INTERRUPTED,
                    message=("The training process ended unexpectedly (server stopped or "
                             "machine restarted)"
                             + (" before the run started." if was == QUEUED else
                                "; the model of the last finished epoch is kept.")),
                    finished=time.time(),
                )
        return status

    def state(self) -> str:
        return self.status()["state"]

    def update_status(self, **fields: Any) -> dict[str, Any]:
        status = {**self.raw_status(), **fields}
        atomic_write_json(self.status_path, status)
        return status

    def is_alive(self) -> bool:
        return lock_held(self.lock_path)

    # control -----------------------------------------------------------------------------
    def control(self) -> dict[str, Any]:
        return read_json(self.control_path) or {}

    def request_stop(self) -> None:
        """Ask the worker to stop after the current batch (it keeps and evaluates the model)."""
        if self.state() not in ACTIVE_STATES:
            raise RunError(f"Run {self.id} is not training, so there is nothing to stop.")
        atomic_write_json(self.control_path, {**self.control(), "stop": True})

    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the peak learning rate of a running run from its next batch on."""
        if not (isinstance(learning_rate, (int, float)) and 0 < learning_rate <= 10):
            raise RunError("The learning rate must be above 0 and at most 10.")
        if self.state() not in ACTIVE_STATES:
            raise RunError(f"Run {self.id} is not training.")
        atomic_write_json(self.control_path,
                          {**self.control(), "learning_rate": float(learning_rate)})

    # results -----------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        return JsonLinesReader(self.metrics_path).read()

    def evaluation(self) -> dict[str, Any] | None:
        return read_json(self.evaluation_path)

    def has_model(self) -> bool:
        return self.model_path.exists()

    def queue_position(self) -> int | None:
        """1 for the next run to start, 2 for the one after, ...; None if not queued."""
        if self.state() != QUEUED:
            return None
        mine = self.raw_status().get("created", 0)
        ahead = [r for r in list_runs(self.root)
                 if r.raw_status().get("state") == QUEUED and r.is_alive()
                 and (r.raw_status().get("created", 0), r.id) < (mine, self.id)]
        return len(ahead) + 1


def _new_run_id(params: HyperParams) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{params.dataset}-{secrets.token_hex(2)}"


def create_run(params: HyperParams, root: str | Path | None = None,
               data_dir: str | Path | None = None, start: bool = True) -> Run:
    """Validate `params`, make the run folder (state `queued`) and spawn its worker.

    The worker waits for a free training slot (one at a time unless $CNN_PARALLEL_RUNS says
    more), trains, evaluates and exits. With start=False no worker is spawned (tests call
    `cnn.training.execute` in-process instead).
    """
    from cnn import datasets

    info = datasets.get_info(params.dataset)
    params.validate(info.image_shape)
    root = runs_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    # Build the folder under a hidden name and rename it: a run is never seen half-made.
    run_id = _new_run_id(params)
    staging = root / f".{run_id}.new"
    staging.mkdir()
    atomic_write_json(staging / "config.json", params.to_dict())
    atomic_write_json(staging / "status.json", {
        "state": QUEUED, "message": "Waiting for its turn to train.",
        "created": time.time(), "started": None, "finished": None,
    })
    run = Run(root / run_id)
    lock_fd = take_lock(staging / ".alive.lock") if start else None
    try:
        os.replace(staging, run.path)
        if start:
            _spawn_worker(run, lock_fd, data_dir)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # the worker holds its own copy of the locked descriptor
    return run


def _spawn_worker(run: Run, lock_fd: int, data_dir: str | Path | None) -> None:
    env = dict(os.environ)
    if data_dir is not None:
        env["CNN_DATA_DIR"] = str(data_dir)
    spawn_detached("cnn.worker", [str(run.path)], lock_fd, run.log_path, env)


def list_runs(root: str | Path | None = None) -> list[Run]:
    """All runs, newest first."""
    root = runs_dir(root)
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(runs, key=lambda r: (r.raw_status().get("created") or 0, r.id), reverse=True)


def get_run(run_id: str, root: str | Path | None = None) -> Run:
    root = runs_dir(root)
    path = root / run_id
    if not run_id or "/" in run_id or run_id.startswith(".") or not path.is_dir():
        raise RunError(f"There is no run {run_id!r} in {root}.")
    return Run(path)


def active_runs(root: str | Path | None = None) -> list[Run]:
    """Runs queued or training now (oldest first)."""
    return [r for r in reversed(list_runs(root)) if r.state() in ACTIVE_STATES]


def delete_run(run: Run) -> None:
    if run.state() in ACTIVE_STATES:
        raise RunError(f"Run {run.id} is still training; stop it before deleting it.")
    # Rename first so a half-deleted folder never shows up as a run.
    trash = run.root / f".{run.id}.deleted-{secrets.token_hex(2)}"
    os.replace(run.path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def parallel_slots() -> int:
    try:
        return max(1, int(os.environ.get(PARALLEL_RUNS_ENV, "1")))
    except ValueError:
        return 1


def wait_for_slot(run: Run, poll_seconds: float = 0.25) -> int | None:
    """Block until `run` may train: first in the queue and a training slot free.

    Returns the slot's lock fd (keep it open while training), or None if a stop was
    requested while waiting.
    """
    slots = [run.root / f".training-slot-{i}.lock" for i in range(parallel_slots())]
    while True:
        if run.control().get("stop"):
            return None
        if run.queue_position() == 1:
            for slot in slots:
                fd = take_lock(slot)
                if fd is not None:
                    return fd
        time.sleep(poll_seconds)
