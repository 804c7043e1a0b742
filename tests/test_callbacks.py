"""The run's callbacks, tested without fit(): set_model, then hand-written logs."""

import json
import math

import keras
import pytest

from cnn.callbacks import MetricsRecorder, RunController


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _model(lr=0.01):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_recorder_writes_batch_and_epoch_records(tmp_path):
    clock = FakeClock()
    path = tmp_path / "metrics.jsonl"
    recorder = MetricsRecorder(path, batch_size=32, batches_per_epoch=4, min_interval=0.5,
                               clock=clock)
    recorder.set_model(_model())
    recorder.on_train_begin()
    recorder.on_epoch_begin(0)
    for batch in range(4):
        clock.now += 0.3
        recorder.on_train_batch_end(batch, logs={"loss": 2.0 - batch / 10, "accuracy": 0.1})
    clock.now += 5  # validation time: excluded from images/s
    recorder.on_epoch_end(0, logs={"loss": 1.7, "accuracy": 0.2, "val_loss": 1.9,
                                   "val_accuracy": 0.15})
    recorder.on_train_end()

    records = _records(path)
    # The first batch always; then one every >= 0.5 s of the 0.3 s batches: batch 3.
    assert [(r["kind"], r["batch"]) for r in records] == [
        ("batch", 1), ("batch", 3), ("epoch", 4)]
    epoch = records[-1]
    assert epoch["epoch"] == 1 and epoch["step"] == 4 and epoch["partial"] is False
    assert epoch["val_accuracy"] == 0.15 and epoch["val_loss"] == 1.9
    assert epoch["learning_rate"] == pytest.approx(0.01)
    # Timed from the end of the first batch: 3 batches of 32 images in 0.9 s.
    assert epoch["images_per_second"] == pytest.approx(3 * 32 / 0.9)
    assert recorder.images_per_second == pytest.approx(3 * 32 / 0.9)
    assert records[0]["elapsed"] == pytest.approx(0.3)


def test_recorder_marks_a_stopped_epoch_partial_and_drops_non_finite_values(tmp_path):
    path = tmp_path / "metrics.jsonl"
    recorder = MetricsRecorder(path, batch_size=8, batches_per_epoch=10, min_interval=0)
    recorder.set_model(_model())
    recorder.on_train_begin()
    recorder.on_epoch_begin(0)
    recorder.on_train_batch_end(0, logs={"loss": math.nan, "accuracy": 0.5})
    recorder.on_epoch_end(0, logs={"loss": math.inf})
    recorder.on_train_end()
    batch, epoch = _records(path)
    assert batch["loss"] is None and batch["accuracy"] == 0.5
    assert epoch["partial"] is True and epoch["val_loss"] is None


def test_controller_warmup_then_cosine_schedule(tmp_path):
    controller = RunController(tmp_path / "control.json", peak_learning_rate=1.0,
                               total_steps=110, warmup_steps=10, schedule="cosine")
    lrs = [controller.learning_rate_at(s) for s in range(111)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5)  # halfway through the decay
    assert lrs[110] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_controller_applies_learning_rate_and_stop_requests(tmp_path):
    control = tmp_path / "control.json"
    model = _model(lr=0.5)
    controller = RunController(control, peak_learning_rate=0.01, total_steps=100)
    controller.set_model(model)
    controller.on_train_begin()
    controller.on_train_batch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)

    control.write_text(json.dumps({"learning_rate": 0.002}))
    controller.on_train_batch_end(0)
    controller.on_train_batch_begin(1)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.002)
    assert not model.stop_training

    control.write_text(json.dumps({"learning_rate": 0.002, "stop": True}))
    # A changed file is noticed by its modification time.
    import os
    os.utime(control, ns=(1, 10**18))
    controller.on_train_batch_end(1)
    assert controller.stop_requested and model.stop_training


def test_controller_ignores_a_garbled_control_file(tmp_path):
    control = tmp_path / "control.json"
    control.write_text('{"stop": tr')
    model = _model()
    controller = RunController(control, peak_learning_rate=0.01, total_steps=10)
    controller.set_model(model)
    controller.on_train_begin()
    controller.on_train_batch_begin(0)
    controller.on_train_batch_end(0)
    assert not controller.stop_requested


def test_steps_come_from_keras_batch_indices_with_steps_per_execution(tmp_path):
    # With steps_per_execution=4 Keras calls back with the last batch index of each group.
    model = _model()
    controller = RunController(tmp_path / "control.json", peak_learning_rate=1.0,
                               total_steps=24, warmup_steps=12, steps_per_epoch=12)
    recorder = MetricsRecorder(tmp_path / "metrics.jsonl", batch_size=10,
                               batches_per_epoch=12, min_interval=0)
    for callback in (controller, recorder):
        callback.set_model(model)
        callback.on_train_begin()
    for epoch in range(2):
        controller.on_epoch_begin(epoch)
        recorder.on_epoch_begin(epoch)
        for begin in (0, 4, 8):
            controller.on_train_batch_begin(begin)
            controller.on_train_batch_end(begin + 3)
            recorder.on_train_batch_end(begin + 3, logs={"loss": 1.0})
    # Second epoch, group starting at batch 8: step 20 of the run, past the warm-up.
    assert controller.step == 24 and controller.learning_rate_at(20) == 1.0
    assert float(model.optimizer.learning_rate) == pytest.approx(1.0)
    records = _records(tmp_path / "metrics.jsonl")
    assert [(r["epoch"], r["batch"], r["step"]) for r in records] == [
        (1, 4, 4), (1, 8, 8), (1, 12, 12), (2, 4, 16), (2, 8, 20), (2, 12, 24)]
    recorder.on_epoch_end(1, logs={})
    # Images counted after each epoch's first group: 8 batches of 10 per epoch.
    assert recorder.epoch_images == 80
