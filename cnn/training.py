"""One training run, executed in the calling process (the run's worker process).

Reads top to bottom like the Keras tutorial: load the data, build and compile the model,
`fit()` with validation data, `evaluate()` on the test set; around it, the run's status,
live metrics, per-epoch checkpoints, stop requests and the stored evaluation.
"""

from __future__ import annotations

import csv
import io
import math
import time
import traceback
from pathlib import Path

import keras
import numpy as np

from cnn import datasets, evaluation, models
from cnn.callbacks import MetricsRecorder, RunController
from cnn.errors import CnnError
from cnn.runs import FAILED, FINISHED, RUNNING, STOPPED, STOPPING, Run, atomic_write_bytes, \
    atomic_write_json


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

    def __init__(self, run: Run, controller: RunController):
        super().__init__()
        self.run = run
        self.controller = controller
        self.announced_stop = False

    def on_train_batch_end(self, batch, logs=None):
        if self.controller.stop_requested and not self.announced_stop:
            self.announced_stop = True
            self.run.update_status(state=STOPPING, message="Stopping after this batch…")

    def on_epoch_end(self, epoch, logs=None):
        save_model(self.model, self.run.model_path)
        if not self.controller.stop_requested:
            self.run.update_status(epochs_completed=epoch + 1)


def save_model(model: keras.Model, path: Path) -> None:
    """Save to a temp name and rename, so a crash mid-save never leaves a broken model."""
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def execute(run: Run, min_record_interval: float = 0.2) -> dict:
    """Train, evaluate and store `run`. Never raises: the outcome is in the run's status."""
    started = time.time()
    run.update_status(state=RUNNING, message="Loading the dataset…", started=started,
                      epochs_completed=0)
    try:
        summary = _train_and_evaluate(run, min_record_interval)
    except CnnError as error:
        return run.update_status(state=FAILED, message=str(error), finished=time.time())
    except Exception as error:  # a bug: keep the traceback in worker.log, a line for the UI
        traceback.print_exc()
        return run.update_status(
            state=FAILED, finished=time.time(),
            message=f"Training failed: {type(error).__name__}: {error} (see worker.log)")
    return run.update_status(**summary, finished=time.time())


def _train_and_evaluate(run: Run, min_record_interval: float) -> dict:
    params = run.config
    info = datasets.get_info(params.dataset)
    params.validate(info.image_shape)

    def download_progress(done: int, total: int | None) -> None:
        share = f" ({done / total:.0%})" if total else ""
        run.update_status(message=f"Downloading {info.title}: {done / 1e6:.1f} MB{share}")

    # Load the data (uint8), hold out validation images from the training set.
    data = datasets.load(params.dataset, progress=download_progress)
    # A subset larger than the dataset (the "fast" preset on digits) means all of it.
    available = len(data.y_train) - round(params.validation_split * len(data.y_train))
    train_size = params.train_size if (params.train_size or 0) < available else None
    splits = datasets.split(data, params.validation_split, train_size, params.seed)
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

    # Train, recording metrics and obeying stop / learning-rate requests.
    recorder = MetricsRecorder(run.metrics_path, params.batch_size, steps_per_epoch,
                               min_interval=min_record_interval)
    controller = RunController(
        run.control_path, params.learning_rate, total_steps=steps_per_epoch * params.epochs,
        warmup_steps=round(params.warmup_epochs * steps_per_epoch),
        schedule=params.lr_schedule, steps_per_epoch=steps_per_epoch)
    run.update_status(message="Training…", train_images=len(splits.x_train),
                      val_images=len(splits.x_val), precision=models.dtype_policy(params))
    fit_started = time.time()
    history = model.fit(splits.x_train, y_train, batch_size=params.batch_size,
                        validation_data=validation, epochs=params.epochs, shuffle=True,
                        callbacks=[controller, recorder, _RunProgress(run, controller)], verbose=0)
    stopped = controller.stop_requested
    fit_seconds = time.time() - fit_started
    del splits, y_train, validation  # free the training images before evaluating

    # Evaluate on the test set, as the tutorial's last step.
    run.update_status(state=STOPPING if stopped else RUNNING,
                      message="Evaluating on the test set…")
    save_model(model, run.model_path)
    _write_history(run, history.history)
    result = evaluate_model(run, model, data, one_hot)
    epochs_completed = sum(1 for r in run.metrics()
                           if r.get("kind") == "epoch" and not r.get("partial"))
    return {
        "state": STOPPED if stopped else FINISHED,
        "message": (f"Stopped after {epochs_completed} full epoch(s)" if stopped
                    else f"Finished {epochs_completed} epoch(s)")
        + f": test accuracy {result['test_accuracy']:.1%}.",
        "epochs_completed": epochs_completed,
        "test_loss": result["test_loss"],
        "test_accuracy": result["test_accuracy"],
        "train_images_per_second": recorder.images_per_second,
        "train_seconds": fit_seconds,  # fit() only: validation included, loading not
    }


def evaluate_model(run: Run, model: keras.Model, data: datasets.Dataset,
                   one_hot: bool) -> dict:
    """Test loss/accuracy, confusion matrix and per-class report, stored in the run."""
    info = data.info
    y_test = labels_for(data.y_test, info.num_classes, one_hot)
    loss, accuracy = model.evaluate(data.x_test, y_test, batch_size=256, verbose=0)
    probabilities = model.predict(data.x_test, batch_size=256, verbose=0)
    report = evaluation.summarize(data.y_test, probabilities, info.class_names)
    result = {"test_loss": float(loss), "test_accuracy": float(accuracy), **report,
              "class_names": list(info.class_names), "test_images": len(data.x_test)}
    atomic_write_json(run.evaluation_path, result)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, y_pred=probabilities.argmax(axis=1).astype("int32"),
                        confidence=probabilities.max(axis=1).astype("float32"),
                        y_true=np.asarray(data.y_test).astype("int32"))
    atomic_write_bytes(run.predictions_path, buffer.getvalue())
    return result


def evaluate_run(run: Run) -> dict:
    """(Re-)evaluate a run's saved model on its test set — e.g. an interrupted run's last
    checkpoint. Loads the model in safe mode."""
    from cnn.inference import load_model

    if not run.has_model():
        raise CnnError(f"Run {run.id} has no saved model yet (it never finished an epoch).")
    params = run.config
    model = models.compile_model(load_model(run.model_path), params)
    data = datasets.load(params.dataset, download_missing=False)
    return evaluate_model(run, model, data, models.uses_one_hot_labels(params))


def _write_history(run: Run, history: dict[str, list[float]]) -> None:
    out = io.StringIO()
    columns = list(history)
    writer = csv.writer(out)
    writer.writerow(["epoch", *columns])
    for i in range(len(history[columns[0]]) if columns else 0):
        writer.writerow([i + 1, *(history[c][i] for c in columns)])
    atomic_write_bytes(run.history_path, out.getvalue().encode())
