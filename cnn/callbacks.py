"""Keras callbacks of a run. They write records and read requests; they never call a UI."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import keras

from cnn.config import check_learning_rate
from cnn.errors import ConfigError
from cnn.store import read_json


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
        self.start = None
        self.step = self.epoch = self.batch = self.epoch_images = 0
        self.first_batch_end = None

    def on_train_begin(self, logs=None):
        self.start = self.clock()
        self.step = 0
        self.epoch = 0
        self.batch = 0
        self.first_batch_end = None
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

    def write_start(self, loss: float | None, accuracy: float | None) -> None:
        """The network before any training (step 0): the chart's first point, at once."""
        self._write("start", {"loss": loss, "accuracy": accuracy}, self.clock())

    def event(self, details: dict[str, Any]) -> None:
        """Record something that happened at this step (a learning-rate change, a pause)."""
        self._write("event", {}, self.clock(), **details)

    def exclude(self, seconds: float) -> None:
        """Leave `seconds` (a pause) out of the elapsed time and of images/s."""
        self.start += seconds
        if self.first_batch_end is not None:
            self.first_batch_end += seconds

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
        seconds = self._epoch_seconds if self.first_batch_end is not None else 0.0
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
            "elapsed": 0.0 if self.start is None else now - self.start,
            **extra,
        }
        if kind == "epoch":
            record["val_loss"] = _number(logs.get("val_loss"))
            record["val_accuracy"] = _number(logs.get("val_accuracy"))
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record, allow_nan=False) + "\n")
        self._file.flush()

    @property
    def images_per_second(self) -> float | None:
        """Training throughput over all finished epochs (validation time excluded)."""
        return self.train_images / self.train_seconds if self.train_seconds > 0 else None


class RunController(keras.callbacks.Callback):
    """Applies the learning-rate schedule and the requests in the run's control file.

    The schedule is Keras's `CosineDecay` with linear warm-up (or a constant after the
    warm-up), normalised to a peak of 1 and scaled by the peak learning rate — which a
    request can change mid-run. Requests: stop (ends training after the current batch
    group), a new peak learning rate, pause / resume, and one step (a batch group or the
    rest of an epoch) while paused. `time_limit` seconds of training (pauses excluded)
    stop it as a stop request does.

    Args:
        control_path: the run's control.json (read every batch group: it is a few bytes,
            and a file's modification time cannot tell two quick writes apart).
        peak_learning_rate: the configured learning rate.
        total_steps: batches in the whole run.
        warmup_steps: batches of linear warm-up.
        schedule: "constant" or "cosine".
        steps_per_epoch: batches per epoch (default: the whole run is one epoch). With
            `steps_per_execution` > 1 Keras calls back once per group of batches, so the
            step is worked out from the epoch and Keras's batch index, not counted.
        time_limit: seconds of training before stopping by itself, or None.
        on_event: called with a dict for every change worth recording (learning rate
            changed, paused, resumed, time limit reached).
        on_pause: called with (True, 0) when training pauses and (False, seconds paused)
            when it resumes.
        clock: time source (tests pass a fake).
    """

    def __init__(self, control_path: str | Path, peak_learning_rate: float, total_steps: int,
                 warmup_steps: int = 0, schedule: str = "constant",
                 steps_per_epoch: int | None = None, time_limit: float | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 on_pause: Callable[[bool, float], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, poll_seconds: float = 0.1):
        super().__init__()
        self.control_path = Path(control_path)
        self.peak = peak_learning_rate
        self.total_steps = max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.steps_per_epoch = steps_per_epoch or self.total_steps
        self.time_limit = time_limit
        self.on_event = on_event or (lambda event: None)
        self.on_pause = on_pause or (lambda paused, seconds: None)
        self.clock = clock
        self.poll_seconds = poll_seconds
        decay_steps = max(1, self.total_steps - warmup_steps)
        # A constant schedule is a cosine whose floor is its peak (alpha=1).
        self.shape = keras.optimizers.schedules.CosineDecay(
            0.0 if warmup_steps else 1.0, decay_steps, alpha=0.0 if schedule == "cosine" else 1.0,
            warmup_target=1.0 if warmup_steps else None, warmup_steps=warmup_steps)
        self.heartbeat = clock()  # last sign of life, for the worker's watchdog

    def on_train_begin(self, logs=None):
        self.step = 0
        self.epoch_offset = 0
        self.epoch = 0
        self.stop_requested = False
        self.stop_reason = None
        self._lr = None
        self._step_done = None  # the id of the last step request carried out
        self._run_to_epoch_end = False
        self.paused_seconds = 0.0
        self.started = self.clock()
        self._read_control()
        self._step_done = (self._control.get("step") or {}).get("id")

    def learning_rate_at(self, step: int) -> float:
        # During the warm-up Keras's schedule gives step/warmup; one step later keeps the
        # first batch from being wasted at a learning rate of 0.
        at = step + 1 if step < self.warmup_steps else step
        return self.peak * float(self.shape(at))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_offset = epoch * self.steps_per_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._run_to_epoch_end = False

    def on_train_batch_begin(self, batch, logs=None):
        self.step = self.epoch_offset + batch
        self._read_control()
        lr = self.learning_rate_at(self.step)
        if lr != self._lr:  # a constant schedule assigns once, not every batch
            self.model.optimizer.learning_rate.assign(lr)
            self._lr = lr

    def on_train_batch_end(self, batch, logs=None):
        self.step = self.epoch_offset + batch + 1
        self.heartbeat = self.clock()
        self._read_control()
        if not self.stop_requested and self.time_limit is not None and \
                self.training_seconds >= self.time_limit:
            self.stop_requested, self.stop_reason = True, "time limit"
            self.on_event({"event": "time_limit", "seconds": self.time_limit})
        if not self.stop_requested and self._wants_pause():
            self._pause()
        if self.stop_requested:
            self.model.stop_training = True

    @property
    def training_seconds(self) -> float:
        return self.clock() - self.started - self.paused_seconds

    def _wants_pause(self) -> bool:
        if not self._control.get("paused") or self._run_to_epoch_end:
            return False
        step = self._control.get("step") or {}
        if step.get("id") is not None and step.get("id") != self._step_done:
            # A step was asked for while paused: carry it out (this group was it), or run
            # on to the end of the epoch.
            self._step_done = step.get("id")
            if step.get("unit") == "epoch":
                self._run_to_epoch_end = True
            return False
        return True

    def _pause(self):
        """Wait, reading requests, until resumed, stepped or stopped."""
        began = self.clock()
        self.on_pause(True, 0.0)
        self.on_event({"event": "paused"})
        while True:
            time.sleep(self.poll_seconds)
            self.heartbeat = self.clock()
            self._read_control()
            if self.stop_requested or not self._wants_pause():
                break
        self.paused_seconds += self.clock() - began
        self.on_pause(False, self.clock() - began)
        if not self.stop_requested:
            self.on_event({"event": "resumed"})

    def _read_control(self):
        control = read_json(self.control_path)
        self._control = control if isinstance(control, dict) else {}
        if self._control.get("stop") and not self.stop_requested:
            self.stop_requested, self.stop_reason = True, "stop"
        lr = self._control.get("learning_rate")
        try:
            check_learning_rate(lr)
        except ConfigError:
            return
        if float(lr) != self.peak:
            self.on_event({"event": "learning_rate", "from": self.peak, "to": float(lr)})
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
