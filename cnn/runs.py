"""Training runs on disk: one job folder per run, visible to every process that looks.

A run folder is a job (see `cnn.jobs`: status.json, control.json, worker.json, worker.log)
that also holds
    config.json        the HyperParams (written once)
    metrics.jsonl      one JSON record per line, appended by the training callback
    model.keras        the latest model (saved after every epoch, atomically)
    history.csv        per-epoch metrics
    evaluation.json    test loss/accuracy, confusion matrix, per-class report
    predictions.npz    per test image: predicted class and confidence
    inside.npz         the newest look inside the network while it trains (filters, maps)
"""

from __future__ import annotations

import copy
import math
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn import jobs
from cnn.config import HyperParams, check_learning_rate
from cnn.errors import ConfigError, RunError
from cnn.jobs import (ACTIVE_STATES, DAMAGED, FAILED, FINAL_STATES, FINISHED, INTERRUPTED,
                      PAUSED, QUEUED, RUNNING, STOPPED, STOPPING, Job)
from cnn.processes import ProcessId
from cnn.store import DamagedFile, JsonLinesReader, read_json, read_json_object

RUNS_DIR_ENV = "CNN_RUNS_DIR"

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "QUEUED", "RUNNING", "PAUSED", "STOPPING",
           "STOPPED", "FINISHED", "FAILED", "INTERRUPTED", "DAMAGED", "Run", "runs_dir",
           "create_run", "list_runs", "get_run", "active_runs", "delete_run", "queue"]


def runs_dir(path: str | Path | None = None) -> Path:
    """The runs folder: `path`, else $CNN_RUNS_DIR, else ./runs."""
    return Path(path or os.environ.get(RUNS_DIR_ENV) or "runs")


def queue(root: str | Path | None = None) -> jobs.Queue:
    """The line of runs waiting to train in `root`, and its training slots."""
    return jobs.Queue(runs_dir(root), jobs.parallel_slots())


_CONFIG_CACHE: dict[tuple, HyperParams] = {}


@dataclass(frozen=True)
class Run(Job):
    """A run folder. Cheap to create; every accessor reads the disk afresh."""

    config_path = property(lambda self: self.path / "config.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    model_path = property(lambda self: self.path / "model.keras")
    history_path = property(lambda self: self.path / "history.csv")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    predictions_path = property(lambda self: self.path / "predictions.npz")
    inside_path = property(lambda self: self.path / "inside.npz")

    @property
    def config(self) -> HyperParams:
        """The run's hyperparameters; RunError naming what is wrong when the file is
        missing or damaged. (Parsed once per version of the file: every viewer of a live
        run asks every second.)"""
        try:
            stat = os.stat(self.config_path)
        except FileNotFoundError:
            raise RunError(f"Run {self.id} has no config.json.") from None
        except OSError as error:
            raise RunError(f"Run {self.id}'s config.json cannot be read "
                           f"({error.strerror}).") from None
        version = (str(self.config_path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version not in _CONFIG_CACHE:
            try:
                _CONFIG_CACHE[version] = HyperParams.from_dict(
                    read_json_object(self.config_path))
            except FileNotFoundError:
                raise RunError(f"Run {self.id} has no config.json.") from None
            except (DamagedFile, ConfigError) as error:
                raise RunError(f"Run {self.id} has a damaged config.json: {error}") \
                    from None
            if len(_CONFIG_CACHE) > 2048:
                _CONFIG_CACHE.clear()
        return copy.deepcopy(_CONFIG_CACHE[version])

    def interrupted_message(self, was: str) -> str:
        return ("The training process ended unexpectedly (server stopped or machine "
                "restarted)" + (" before the run started." if was == QUEUED else
                                "; the model of the last finished epoch is kept."))

    # control -----------------------------------------------------------------------------
    def set_learning_rate(self, learning_rate: float) -> None:
        """Change the peak learning rate of a running run from its next batch on."""
        check_learning_rate(learning_rate, RunError)
        if self.state() not in ACTIVE_STATES:
            raise RunError(f"Run {self.id} is not training.")
        self.request(learning_rate=float(learning_rate))

    def pause(self) -> None:
        """Hold training after the current batch group, until resumed (or stepped)."""
        if self.state() not in (RUNNING, PAUSED, QUEUED):
            raise RunError(f"Run {self.id} is not training.")
        self.request(paused=True)

    def resume(self) -> None:
        if self.state() not in ACTIVE_STATES:
            raise RunError(f"Run {self.id} is not training.")
        self.request(paused=False)

    def step(self, unit: str = "batch") -> None:
        """While paused: train one more batch group ("batch") or up to the end of the epoch
        ("epoch"), then hold again."""
        if unit not in ("batch", "epoch"):
            raise RunError(f"A step is a batch or an epoch, not {unit!r}.")
        if self.state() not in (RUNNING, PAUSED):
            raise RunError(f"Run {self.id} is not training.")
        self.request(paused=True, step={"id": secrets.token_hex(4), "unit": unit})

    # results -----------------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        return clean_records(JsonLinesReader(self.metrics_path).read())

    def evaluation(self) -> dict[str, Any] | None:
        """evaluation.json when it is there and whole; None otherwise (see
        `evaluation_problem` for why)."""
        from cnn.evaluation import check_report

        data = read_json(self.evaluation_path)
        return data if isinstance(data, dict) and check_report(data) is None else None

    def evaluation_problem(self) -> str | None:
        from cnn.evaluation import check_report

        try:
            return check_report(read_json_object(self.evaluation_path))
        except FileNotFoundError:
            return "it has no test results yet"
        except DamagedFile as error:
            return str(error)

    def has_model(self) -> bool:
        return self.model_path.is_file()

    def queue_position(self) -> int | None:
        """1 for the next run to start, 2 for the one after...; None if not queued."""
        return queue(self.root).position(self)

    def waiting(self) -> tuple[str, int] | None:
        """For a queued run: ("starting", 1) when it is next and a training slot is free
        (its process is only loading TensorFlow), else ("queued", its place in line)."""
        line = queue(self.root)
        position = line.position(self)
        if position is None:
            return None
        if position == 1 and len(line.busy_slots()) < line.slot_count:
            return "starting", 1
        return "queued", position


_RECORD_KINDS = ("start", "batch", "epoch", "event")
_RECORD_INTS = ("step", "epoch", "batch", "batches_per_epoch")
_RECORD_NUMBERS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                   "images_per_second", "elapsed")


def valid_record(record: dict[str, Any]) -> bool:
    """Whether a metrics record is one the callbacks write (a damaged or hand-edited line
    is left out rather than breaking a chart)."""
    if record.get("kind") not in _RECORD_KINDS:
        return False
    for key in _RECORD_INTS:
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return False
    if record["batches_per_epoch"] < 1:
        return False
    return all(record.get(key) is None or (isinstance(record[key], (int, float))
                                           and not isinstance(record[key], bool)
                                           and math.isfinite(record[key]))
               for key in _RECORD_NUMBERS)


def clean_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if valid_record(r)]


def _new_run_id(params: HyperParams) -> str:
    return jobs.new_job_id(params.dataset)


def create_run(params: HyperParams, root: str | Path | None = None,
               data_dir: str | Path | None = None, start: bool = True,
               extra_status: dict[str, Any] | None = None) -> Run:
    """Validate `params`, make the run folder (state `queued`) and start its worker.

    The worker waits for a free training slot (one at a time unless $CNN_PARALLEL_RUNS says
    more), trains, evaluates and exits. With start=False no worker is started (tests call
    `cnn.training.execute` in-process instead).
    """
    from cnn import datasets

    info = datasets.get_info(params.dataset)
    params.validate(info.image_shape, info.num_classes)
    root = runs_dir(root)
    created = time.time()
    job = jobs.create_job(root, _new_run_id(params), {"config.json": params.to_dict()}, {
        "state": QUEUED, "message": "Waiting for its turn to train.", "created": created,
        "started": None, "finished": None, **(extra_status or {}),
    }, starter=ProcessId.current() if start else None)
    run = Run(job.path)
    if start:
        line = queue(root)
        line.enter(run, created)
        env = dict(os.environ)
        if data_dir is not None:
            env["CNN_DATA_DIR"] = str(data_dir)
        # A warm worker (TensorFlow already loaded) takes the run if it can train at once.
        warm = not line.busy_slots() and line.position(run) == 1
        try:
            jobs.executor.start(run, "train", env, warm=warm)
        except Exception as error:
            jobs.StatusWriter(run).update(state=FAILED, finished=time.time(),
                                          message=f"The training process could not be "
                                          f"started: {error}")
            queue(root).leave(run)
            raise
    return run


def list_runs(root: str | Path | None = None) -> list[Run]:
    """All runs, newest first (a run with a damaged status sorts by its folder name)."""
    runs = [Run(path) for path in jobs.list_job_paths(runs_dir(root))]

    def created(run: Run) -> float:
        value = run.raw_status().get("created")
        return float(value) if isinstance(value, (int, float)) else 0.0

    return sorted(runs, key=lambda r: (created(r), r.id), reverse=True)


def fingerprint(root: str | Path | None = None, finished_only: bool = False) -> tuple:
    """Changes whenever a run appears, changes state (queued, training, paused, finished,
    ...) or is deleted, by anyone — not at every epoch of a run that trains, whose progress
    the pages' live parts show themselves (a whole page redrawn at every status write, in
    thirty browsers, took a core). With `finished_only`, only runs that have ended count,
    and any change to one of them (its results recomputed). Cheap enough to poll every
    second from every browser: a stat per run, a process lookup per active run."""
    seen = []
    for path in jobs.list_job_paths(runs_dir(root)):
        run = Run(path)
        state = run.state()
        if not finished_only:
            seen.append((run.id, state))
        elif state in FINAL_STATES:
            seen.append(run.version())
    return tuple(sorted(seen, key=repr))


def get_run(run_id: str, root: str | Path | None = None) -> Run:
    root = runs_dir(root)
    if not isinstance(run_id, str) or not run_id or "/" in run_id or "\\" in run_id \
            or run_id.startswith(".") or not (root / run_id).is_dir():
        raise RunError(f"There is no run {run_id!r}.")
    return Run(root / run_id)


def active_runs(root: str | Path | None = None) -> list[Run]:
    """Runs queued or training now (oldest first)."""
    return [r for r in reversed(list_runs(root)) if r.state() in ACTIVE_STATES]


def delete_run(run: Run) -> None:
    """Remove a run folder for good (refused while it trains)."""
    if run.state() in ACTIVE_STATES:
        raise RunError(f"Run {run.id} is still training; stop it before deleting it.")
    jobs.delete_job(run)
