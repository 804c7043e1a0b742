"""Keras callbacks of a run. They write records and read requests; they never call a UI."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import keras


class MetricsRecorder(keras.callbacks.Callback):
    """Appends training progress to a JSON-lines file.

    A `batch` record at most every `min_interval` seconds (and for the first batch), and
    an `epoch` record at each epoch end with the validation metrics. Each record carries
    step, epoch (1-based), batch, batches_per_epoch, loss, accuracy, learning_rate,
    images_per_second (of the batches so far this epoch, validation excluded) and elapsed
    seconds since training began. Lines are flushed as written, so a reader in another
    process sees them at once.

    Args:
        path: the metrics file (appended to).
        batch_size: images per batch, for images/second.
        batches_per_epoch: for the progress bar and the ETA.
        min_interval: seconds between two batch records; 0 records every batch.
        clock: time source (tests pass a fake).
    """

    def __init__(self, path: str | Path, batch_size: int, batches_per_epoch: int,
                 min_interval: float = 0.2, clock: Callable[[], float] = time.perf_counter):
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.batches_per_epoch = batches_per_epoch
        self.min_interval = min_interval
        self.clock = clock
        self._file = None

    def on_train_begin(self, logs=None):
        self._file = open(self.path, "a", encoding="utf-8")
        self.start = self.clock()
        self.step = 0
        self.epoch = 0
        self.last_record = -math.inf
        self.train_seconds = 0.0  # time spent in training batches, all epochs
        self.train_images = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self.epoch_start_step = self.step
        self.batch = 0
        self.epoch_images = 0  # images after the epoch's first recorded batch
        self.first_batch = self.first_batch_end = self.last_batch_end = None

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        # Keras passes the index of the last batch done (several with steps_per_execution).
        # Keras may report an end index past the epoch's last batch for the final group.
        self.batch = min(batch + 1, self.batches_per_epoch)
        self.step = self.epoch_start_step + self.batch
        # Throughput is timed from the end of each epoch's first batch: the first batch
        # of a run includes tracing the graph, which would understate steady speed.
        if self.first_batch_end is None:
            self.first_batch, self.first_batch_end = self.batch, now
        self.epoch_images = (self.batch - self.first_batch) * self.batch_size
        self.last_batch_end = now
        if self.batch == 1 or now - self.last_record >= self.min_interval:
            self.last_record = now
            self._write("batch", logs, now)

    def on_epoch_end(self, epoch, logs=None):
        self.train_seconds += self._epoch_seconds
        self.train_images += self.epoch_images
        self._write("epoch", logs, self.clock(), partial=self.batch < self.batches_per_epoch)

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def _epoch_seconds(self) -> float:
        if self.first_batch_end is None:
            return 0.0
        return self.last_batch_end - self.first_batch_end

    def _write(self, kind: str, logs: dict[str, Any] | None, now: float, **extra: Any):
        logs = dict(logs or {})
        seconds = self._epoch_seconds
        record = {
            "kind": kind,
            "step": self.step,
            "epoch": self.epoch,
            "batch": self.batch,
            "batches_per_epoch": self.batches_per_epoch,
            "loss": _number(logs.get("loss")),
            "accuracy": _number(logs.get("accuracy")),
            "learning_rate": _current_learning_rate(self.model),
            "images_per_second": self.epoch_images / seconds if seconds > 0 else None,
            "elapsed": now - self.start,
            **extra,
        }
        if kind == "epoch":
            record["val_loss"] = _number(logs.get("val_loss"))
            record["val_accuracy"] = _number(logs.get("val_accuracy"))
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    @property
    def images_per_second(self) -> float | None:
        """Training throughput over all finished epochs (validation time excluded)."""
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None


class RunController(keras.callbacks.Callback):
    """Applies the learning-rate schedule and the requests in the run's control file.

    The schedule: linear warm-up from 0 over `warmup_steps`, then constant or cosine decay
    to 0 at `total_steps`, all scaled by the peak learning rate - which a request can
    change mid-run. A stop request ends training after the current batch.

    Args:
        control_path: JSON file with optional keys "stop" (bool) and "learning_rate".
        peak_learning_rate: the configured learning rate.
        total_steps: batches in the whole run.
        warmup_steps: batches of linear warm-up.
        schedule: "constant" or "cosine".
        steps_per_epoch: batches per epoch (default: the whole run is one epoch). With
            `steps_per_execution` > 1 Keras calls back once per group of batches, so the
            step is worked out from the epoch and Keras's batch index, not counted.
    """

    def __init__(self, control_path: str | Path, peak_learning_rate: float, total_steps: int,
                 warmup_steps: int = 0, schedule: str = "constant",
                 steps_per_epoch: int | None = None):
        super().__init__()
        self.control_path = Path(control_path)
        self.peak = peak_learning_rate
        self.total_steps = max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch or self.total_steps

    def on_train_begin(self, logs=None):
        self.step = 0
        self.epoch_offset = 0
        self.stop_requested = False
        self._control_mtime = None
        self._lr = None

    def learning_rate_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        if self.schedule == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (step - self.warmup_steps) / span)
            return self.peak * 0.5 * (1 + math.cos(math.pi * progress))
        return self.peak

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_offset = epoch * self.steps_per_epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.step = self.epoch_offset + batch
        self._read_control()
        lr = self.learning_rate_at(self.step)
        if lr != self._lr:  # a constant schedule assigns once, not every batch
            self.model.optimizer.learning_rate.assign(lr)
            self._lr = lr

    def on_train_batch_end(self, batch, logs=None):
        self.step = self.epoch_offset + batch + 1
        self._read_control()
        if self.stop_requested:
            self.model.stop_training = True

    def _read_control(self):
        try:
            mtime = os.stat(self.control_path).st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        try:
            control = json.loads(self.control_path.read_text())
        except (OSError, ValueError):
            return
        if control.get("stop"):
            self.stop_requested = True
        lr = control.get("learning_rate")
        if isinstance(lr, (int, float)) and 0 < lr <= 10:
            self.peak = float(lr)


def _current_learning_rate(model) -> float | None:
    try:
        return float(model.optimizer.learning_rate)
    except (AttributeError, TypeError, ValueError):
        return None


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
