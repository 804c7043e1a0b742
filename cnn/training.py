"""One training run, executed in the calling process (the run's worker process).

Reads top to bottom like the Keras tutorial: load the data, build and compile the model,
`fit()` with validation data, evaluate on the test set; around it, the run's status, live
metrics, per-epoch checkpoints, stop / pause / learning-rate requests and the stored
evaluation.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

import numpy as np

from cnn import datasets, evaluation, models, processes
from cnn.callbacks import MetricsRecorder, RunController
from cnn.checkpoints import save_model
from cnn.explain import SnapshotWriter
from cnn.errors import CnnError
from cnn.jobs import FAILED, FINISHED, PAUSED, RUNNING, STOPPED, STOPPING, StatusWriter
from cnn.runs import Run
from cnn.store import atomic_write_bytes, storage_error

import keras  # noqa: E402  (cnn.models has started TensorFlow quietly)


def labels_for(y: np.ndarray, num_classes: int, one_hot: bool) -> np.ndarray:
    """Class indices as the loss wants them: int32, or one-hot float32 for label smoothing."""
    y = np.asarray(y).astype("int32").ravel()
    return np.eye(num_classes, dtype="float32")[y] if one_hot else y


def steps_per_execution(steps_per_epoch: int) -> int:
    """Batches per call into TensorFlow: up to 16 (1.15-1.2× faster on a 2-core CPU than
    one at a time), while keeping at least ~20 callbacks an epoch for live charts; a stop
    request still lands within 16 batches (a fraction of a second)."""
    return max(1, min(16, steps_per_epoch // 20))


class _RunProgress(keras.callbacks.Callback):
    """Keeps the run's status current and saves the model after every epoch, so an
    interrupted run keeps its last finished epoch."""

    def __init__(self, status: StatusWriter, run: Run, controller: RunController):
        super().__init__()
        self.status = status
        self.run = run
        self.controller = controller
        self.announced_stop = False

    def on_train_batch_end(self, batch, logs=None):
        if self.controller.stop_requested and not self.announced_stop:
            self.announced_stop = True
            reason = ("Time is up: stopping after this batch…"
                      if self.controller.stop_reason == "time limit"
                      else "Stopping after this batch…")
            self.status.update(state=STOPPING, message=reason)

    def on_epoch_end(self, epoch, logs=None):
        save_model(self.model, self.run.model_path)
        if not self.controller.stop_requested:
            self.status.update(epochs_completed=epoch + 1)

    def paused(self, paused: bool) -> None:
        if self.controller.stop_requested:
            return
        self.status.update(state=PAUSED if paused else RUNNING,
                           message="Paused — press Resume or Step." if paused else "Training…")


def execute(run: Run, min_record_interval: float = 0.2, status: StatusWriter | None = None,
            on_training_start=None, heartbeat=None) -> dict:
    """Train, evaluate and store `run`. Never raises: the outcome is in the run's status.

    `on_training_start()` is called when fit() begins and `heartbeat()` after every batch
    group, epoch and test batch (the worker's watchdog listens to both).
    """
    status = status or StatusWriter(run)
    started = time.time()
    status.update(state=RUNNING, message="Loading the dataset…", started=started,
                  epochs_completed=0)
    signals = _Signals(on_training_start, heartbeat)
    try:
        summary = _train_and_evaluate(run, status, min_record_interval, signals)
    except CnnError as error:
        return _final(status, state=FAILED, message=str(error), finished=time.time())
    except OSError as error:  # a metrics line or a checkpoint that could not be written
        return _final(status, state=FAILED, finished=time.time(),
                      message=str(storage_error(error, error.filename or run.metrics_path)))
    except Exception as error:  # a bug: keep the traceback in worker.log, a line for the UI
        traceback.print_exc()
        return _final(status, state=FAILED, finished=time.time(),
                      message=f"Training failed: {type(error).__name__}: {error} "
                      "(see worker.log)")
    return _final(status, **summary, finished=time.time(), total_seconds=time.time() - started)


def _final(status: StatusWriter, **fields: Any) -> dict:
    """The last status write; if even that fails (disk full), the status on disk stays
    active and readers see the run as interrupted once this process has exited."""
    try:
        return status.update(**fields)
    except CnnError:
        traceback.print_exc()
        return {**status.fields, **fields}


class _Signals(keras.callbacks.Callback):
    """Tells the worker's watchdog that training began and that it is still alive."""

    def __init__(self, on_training_start=None, heartbeat=None):
        super().__init__()
        self.started = on_training_start or (lambda: None)
        self.beat = heartbeat or (lambda: None)

    def on_train_begin(self, logs=None):
        self.started()

    def on_train_batch_end(self, batch, logs=None):
        self.beat()

    on_epoch_end = on_test_batch_end = on_predict_batch_end = on_train_batch_end


def _train_and_evaluate(run: Run, status: StatusWriter, min_record_interval: float,
                        signals: _Signals) -> dict:
    params = run.config
    info = datasets.get_info(params.dataset)
    params.validate(info.image_shape, info.num_classes)

    def download_progress(done: int, total: int | None) -> None:
        share = f" ({done / total:.0%})" if total else ""
        status.update(message=f"Downloading {info.title}: {done / 1e6:.1f} MB{share}")

    # Load the data (uint8), hold out validation images from the training set.
    data = datasets.load(params.dataset, progress=download_progress)
    splits = datasets.split(data, params.validation_split,
                            datasets.usable_train_size(data.info, params), params.seed)
    # The full training arrays are no longer needed: free them (CIFAR-10: 150 MB).
    data.x_train = data.y_train = None
    one_hot = models.uses_one_hot_labels(params)
    keras.utils.set_random_seed(params.seed)
    # uint8 numpy arrays straight to fit(): Keras's array adapter batches and shuffles
    # them faster here than a hand-made tf.data pipeline, and the scaling is in the model.
    y_train = labels_for(splits.y_train, info.num_classes, one_hot)
    validation = None
    if len(splits.x_val):
        validation = (splits.x_val, labels_for(splits.y_val, info.num_classes, one_hot))

    # Build and compile the network.
    steps_per_epoch = math.ceil(len(splits.x_train) / params.batch_size)
    model = models.compile_model(
        models.make_model(params, info.image_shape, info.num_classes), params,
        steps_per_execution=steps_per_execution(steps_per_epoch))

    # Train, recording metrics and obeying stop / pause / learning-rate requests.
    recorder = MetricsRecorder(run.metrics_path, params.batch_size, steps_per_epoch,
                               min_interval=min_record_interval)
    controller = RunController(
        run.control_path, params.learning_rate, total_steps=steps_per_epoch * params.epochs,
        warmup_steps=round(params.warmup_epochs * steps_per_epoch),
        schedule=params.lr_schedule, steps_per_epoch=steps_per_epoch,
        time_limit=params.time_limit, on_event=recorder.event)
    progress = _RunProgress(status, run, controller)
    def on_pause(paused: bool, seconds: float) -> None:
        progress.paused(paused)
        recorder.exclude(seconds)

    controller.on_pause = on_pause
    status.update(message="Training…", train_images=len(splits.x_train),
                  val_images=len(splits.x_val), precision=models.dtype_policy(params),
                  epochs_planned=params.epochs, batches_per_epoch=steps_per_epoch)
    # The chart's first point, before the first batch is traced (a second or two): the
    # loss of the untrained network, about ln(number of classes).
    first = min(len(splits.x_train), params.batch_size)
    start_probabilities = model(splits.x_train[:first], training=False)
    recorder.write_start(
        evaluation.cross_entropy(splits.y_train[:first], start_probabilities),
        float((np.asarray(start_probabilities).argmax(axis=1) == splits.y_train[:first]).mean()))
    # The first filters and one test image's feature maps, before training and after each
    # epoch, for the Train page's live look inside (about 1 % of training time).
    inside = SnapshotWriter(run.inside_path, data.x_test[params.seed % len(data.x_test)])
    fit_started = time.time()
    # The recorder writes each batch group's record before the controller may pause there.
    history = model.fit(splits.x_train, y_train, batch_size=params.batch_size,
                        validation_data=validation, epochs=params.epochs, shuffle=True,
                        callbacks=[signals, recorder, controller, progress, inside],
                        verbose=0)
    stopped = controller.stop_requested
    fit_ended = time.time()
    fit_seconds = fit_ended - fit_started - controller.paused_seconds
    del splits, y_train, validation, history  # free the training images before evaluating

    # Test on the test set, as the tutorial's last step.
    status.update(state=STOPPING if stopped else RUNNING, message="Testing on the test set…")
    save_model(model, run.model_path)
    records = run.metrics()
    _write_history(run, records)
    result = evaluation.evaluate_model(run, model, data, callbacks=[signals])
    peak = processes.peak_memory_bytes()
    epochs_trained = _epochs_trained(records)
    full = sum(1 for r in records if r.get("kind") == "epoch" and not r.get("partial"))
    how = ("Stopped when its time was up" if controller.stop_reason == "time limit"
           else "Stopped")
    return {
        "state": STOPPED if stopped else FINISHED,
        "message": (f"{how} after {_epochs_text(epochs_trained)}" if stopped
                    else f"Finished {full} epoch(s)")
        + f": test accuracy {result['test_accuracy']:.1%}.",
        "epochs_completed": full,
        "epochs_trained": epochs_trained,
        "test_loss": result["test_loss"],
        "test_accuracy": result["test_accuracy"],
        "train_images_per_second": recorder.images_per_second,
        # fit(): every epoch with its validation pass, pauses left out — what a class waits.
        "fit_seconds": fit_seconds,
        "train_seconds": fit_seconds,  # the same; the name older runs and the CLI use
        # Where the rest of a run's time goes: loading and building before fit(), saving
        # and testing after it (the worker's start is `started` - `created`).
        "prepare_seconds": fit_started - status.fields.get("started", fit_started),
        "test_seconds": time.time() - fit_ended,
        "peak_memory_mb": round(peak / 2**20) if peak else None,
    }


def _epochs_trained(records: list[dict]) -> float:
    """Epochs of training done, the part of a stopped epoch included (e.g. 2.4)."""
    last = next((r for r in reversed(records) if r.get("kind") in ("batch", "epoch")), None)
    if not last or not last.get("batches_per_epoch"):
        return 0.0
    return round(last["step"] / last["batches_per_epoch"], 2)


def _epochs_text(epochs: float) -> str:
    return f"{epochs:g} epoch" + ("" if epochs == 1 else "s")


def _write_history(run: Run, records: list[dict]) -> None:
    """history.csv: one row per epoch (a stopped one marked partial), with the learning
    rate it ended at — from the metrics records, written whole by pandas."""
    import pandas as pd

    columns = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
               "partial"]
    rows = [{k: r.get(k) for k in columns} for r in records if r.get("kind") == "epoch"]
    table = pd.DataFrame(rows, columns=columns)
    atomic_write_bytes(run.history_path, table.to_csv(index=False).encode())
