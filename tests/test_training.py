"""Training runs for real on scikit-learn's digits (tiny subsets), in-process and in workers."""

import csv
import json
import time

import numpy as np
import psutil
import pytest

from cnn import runs
from cnn.presets import preset
from cnn.checkpoints import load_model
from cnn.training import execute
from support import wait_for, wait_for_batches


def _tiny(**changes):
    settings = dict(dataset="digits", train_size=256, epochs=2, batch_size=32,
                    precision="float32")
    return preset("fast").replace(**{**settings, **changes})


def test_execute_trains_evaluates_and_stores_everything(tmp_path):
    run = runs.create_run(_tiny(), tmp_path / "r", start=False)
    status = execute(run, min_record_interval=0)
    assert status["state"] == runs.FINISHED, status
    assert status["epochs_completed"] == 2
    assert status["train_images_per_second"] > 0
    # Where the run's time went, and the most memory the process held (TensorFlow alone is
    # a few hundred MB, so a figure below 100 MB would be a wrong unit).
    assert status["prepare_seconds"] > 0 and status["test_seconds"] > 0
    assert status["fit_seconds"] + status["prepare_seconds"] + status["test_seconds"] == \
        pytest.approx(status["finished"] - status["started"], abs=1.0)
    assert 100 < status["peak_memory_mb"] < 8000

    records = run.metrics()
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(r["val_accuracy"] is not None and r["val_loss"] is not None for r in epochs)
    # train_size 256 at batch 32: 8 batches an epoch, every one recorded (interval 0).
    assert [r["step"] for r in records if r["kind"] == "batch"] == list(range(1, 17))
    assert records[-1]["batches_per_epoch"] == 8

    with open(run.history_path) as f:
        history = list(csv.DictReader(f))
    assert [row["epoch"] for row in history] == ["1", "2"]
    assert float(history[-1]["val_accuracy"]) == pytest.approx(epochs[-1]["val_accuracy"])

    # The stored evaluation agrees with an independent prediction of the saved model.
    from cnn import datasets
    evaluation = run.evaluation()
    data = datasets.load("digits")
    model = load_model(run.model_path)
    predicted = np.asarray(model.predict(data.x_test, verbose=0)).argmax(axis=1)
    assert evaluation["test_accuracy"] == pytest.approx((predicted == data.y_test).mean(),
                                                        abs=1e-6)
    assert np.asarray(evaluation["confusion_matrix"]).sum() == len(data.y_test) == 360
    stored = np.load(run.predictions_path)
    np.testing.assert_array_equal(stored["y_pred"], predicted)
    assert status["test_accuracy"] == evaluation["test_accuracy"]
    # The live look inside: the last snapshot is of the trained network's first filters.
    from cnn.explain import read_snapshot

    snapshot = read_snapshot(run.inside_path)
    assert snapshot.epoch == 2
    np.testing.assert_allclose(snapshot.filters.weights(), model.get_layer("conv1")
                               .get_weights()[0], atol=1e-5)  # float32 round trip


def test_a_bad_dataset_fails_the_run_with_a_readable_message(tmp_path):
    run = runs.create_run(_tiny(), tmp_path / "r", start=False)
    config = json.loads(run.config_path.read_text())
    run.config_path.write_text(json.dumps({**config, "dataset": "cifar10"}))  # not on disk
    status = execute(run)
    assert status["state"] == runs.FAILED
    assert "CIFAR-10" in status["message"] and "Traceback" not in status["message"]


def test_worker_stops_mid_run_keeps_and_evaluates_the_model(tmp_path):
    run = runs.create_run(_tiny(epochs=50, train_size=None), tmp_path / "r")
    wait_for_batches(run, 3)
    run.request_stop()
    asked = time.monotonic()
    status = wait_for(run, runs.FINAL_STATES)
    print(f"stop took {time.monotonic() - asked:.2f} s")
    assert status["state"] == runs.STOPPED, status
    assert status["epochs_completed"] < 50
    assert run.has_model() and run.evaluation()["test_images"] == 360
    # The worker exits after writing its final state (and so releases its lock).
    deadline = time.monotonic() + 30
    while run.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not run.is_alive()


def test_killed_worker_is_marked_interrupted_and_keeps_its_checkpoint(tmp_path):
    run = runs.create_run(_tiny(epochs=200, train_size=None), tmp_path / "r")
    wait_for_batches(run, 1)
    # Wait for the first epoch's checkpoint, then kill the worker as a crash would.
    deadline = time.monotonic() + 60
    while not run.has_model() and time.monotonic() < deadline:
        time.sleep(0.05)
    psutil.Process(run.worker().pid).kill()  # SIGKILL, or TerminateProcess on Windows
    status = wait_for(run, [runs.INTERRUPTED])
    assert "ended unexpectedly" in status["message"]
    assert load_model(run.model_path) is not None


def test_runs_queue_one_at_a_time(tmp_path):
    first = runs.create_run(_tiny(epochs=100, train_size=None), tmp_path / "r")
    second = runs.create_run(_tiny(epochs=1), tmp_path / "r")
    wait_for_batches(first, 1)
    assert second.state() == runs.QUEUED and second.queue_position() == 1
    assert first.queue_position() is None
    first.request_stop()
    assert wait_for(first, runs.FINAL_STATES)["state"] == runs.STOPPED
    assert wait_for(second, runs.FINAL_STATES)["state"] == runs.FINISHED


def test_a_queued_run_can_be_stopped_before_it_starts(tmp_path):
    first = runs.create_run(_tiny(epochs=100, train_size=None), tmp_path / "r")
    second = runs.create_run(_tiny(), tmp_path / "r")
    wait_for_batches(first, 1)
    second.request_stop()
    status = wait_for(second, runs.FINAL_STATES)
    assert status["state"] == runs.STOPPED and "before it started" in status["message"]
    assert not second.has_model()
    first.request_stop()
    wait_for(first, runs.FINAL_STATES)


def test_a_stop_in_the_first_epoch_counts_the_part_it_trained(tmp_path):
    run = runs.create_run(_tiny(), tmp_path / "r", start=False)
    run.request(stop=True)  # heard at the first batch: training ends after it
    status = execute(run, min_record_interval=0)
    assert status["state"] == runs.STOPPED
    [epoch] = [r for r in run.metrics() if r["kind"] == "epoch"]
    assert epoch["partial"] and epoch["step"] == 1 and epoch["batches_per_epoch"] == 8
    # One batch of eight: 0.12 epochs, said the same way everywhere (not "0 epochs").
    assert status["epochs_trained"] == 0.12 and status["epochs_completed"] == 0
    assert status["message"].startswith("Stopped after 0.12 epochs: test accuracy")
    assert run.evaluation()["test_images"] == 360
