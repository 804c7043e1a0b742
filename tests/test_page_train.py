"""The Train page, run through the real app with AppTest; runs train for real on digits."""

import io
import json
import re
import time
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from app_pages import common
import support
from cnn import runs
from cnn.config import ConvBlock
from cnn.presets import preset
from cnn.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
PAGE = "app_pages/train.py"


@pytest.fixture(autouse=True)
def only_digits(tmp_path, monkeypatch):
    """No dataset files at all: only digits (bundled with scikit-learn) is available, even
    where CI points CNN_DATA_DIR at real data."""
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))


def open_page() -> AppTest:
    return support.open_page(PAGE, timeout=120)


# --- independent parameter counts (the oracle) -------------------------------------------
def conv(kernel: int, channels_in: int, filters: int) -> int:
    return kernel * kernel * channels_in * filters + filters  # weights + one bias per filter


def dense(inputs: int, units: int) -> int:
    return inputs * units + units


def tutorial_count(side: int, channels: int) -> int:
    """Conv32-Pool-Conv64-Pool-Conv64-Dense64-Dense10, valid padding, by hand."""
    side = (side - 2) // 2  # conv 3×3 trims 2, pool halves
    side = (side - 2) // 2
    side = side - 2
    return (conv(3, channels, 32) + conv(3, 32, 64) + conv(3, 64, 64)
            + dense(side * side * 64, 64) + dense(64, 10))


def test_the_oracle_matches_the_keras_tutorial():
    # The Keras CIFAR-10 tutorial prints 122,570 parameters for 32×32×3 images.
    assert tutorial_count(32, 3) == 122_570


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def summary(at):
    return next(table.value for table in at.table if "Parameters" in table.value.columns)


# --- the form ----------------------------------------------------------------------------
def test_tutorial_preset_on_digits_shows_the_summary_before_training():
    at = open_page()
    # CIFAR-10 (the app's default) is not on disk: the page falls back to digits and
    # says which datasets are missing, with a link to the Data page.
    assert at.session_state[common.DATASET] == "cifar10"
    assert at.selectbox(key="train_dataset").value == "digits"
    assert at.selectbox(key="train_dataset").options == ["Digits (scikit-learn)"]
    assert any("Not on this computer yet: CIFAR-10" in c.value for c in at.caption)
    assert "data" in [link.proto.page for link in at.get("page_link")]

    assert at.segmented_control(key="train_preset").value == "tutorial"
    expected = tutorial_count(32, 1)
    assert expected == 121_994
    assert metric(at, "Parameters") == f"{expected:,}"
    table = summary(at)
    assert table["Parameters"].sum() == expected
    assert list(table["Layer"]) == ["scale_to_0_1", "conv1", "pool1", "conv2", "pool2",
                                    "conv3", "flatten", "dense1", "classes"]
    assert list(table["Output shape"])[:2] == ["32×32×1", "30×30×32"]
    assert not at.button(key="train_start").disabled
    assert not at.error
    # Nothing trained yet: the page says so instead of showing an empty run view.
    assert "Nothing has been trained yet" in at.info[0].value


def test_switching_preset_fills_the_form_and_updates_the_summary():
    at = open_page()
    at.segmented_control(key="train_preset").set_value("fast").run()
    assert not at.exception
    fast = preset("fast")
    assert at.selectbox(key="train_block0_filters").value == 16
    assert at.selectbox(key="train_block1_filters").value == 32
    assert not any(box.key == "train_block2_filters" for box in at.selectbox)
    assert at.selectbox(key="train_batch_size").value == fast.batch_size == 128
    assert at.number_input(key="train_epochs").value == fast.epochs == 2
    assert at.toggle(key="train_use_subset").value
    assert at.number_input(key="train_subset").value == 10_000
    # Digits has fewer training images than the preset asks for: all are used, and said so.
    assert any("all of them are used" in c.value for c in at.caption)
    # Conv16-Pool-Conv32-Pool-Dense64-Dense10 on 32×32×1: 30→15, 13→6.
    expected = conv(3, 1, 16) + conv(3, 16, 32) + dense(6 * 6 * 32, 64) + dense(64, 10)
    assert metric(at, "Parameters") == f"{expected:,}"
    assert summary(at)["Parameters"].sum() == expected

    # An edit is noted against the preset, and Reset brings the preset back.
    at.number_input(key="train_epochs").set_value(7).run()
    assert any("Changed: epochs" in c.value for c in at.caption)
    at.button(key="train_reset").click().run()
    assert at.number_input(key="train_epochs").value == 2
    assert not any("Changed:" in c.value for c in at.caption)


def test_a_preset_control_that_reports_no_choice_keeps_the_last_one():
    """A click landing while the page redraws can make the segmented control report no
    preset; the form keeps the last real choice and its settings instead of failing."""
    at = open_page()
    at.segmented_control(key="train_preset").set_value("fast").run()
    at.number_input(key="train_epochs").set_value(7).run()
    at.segmented_control(key="train_preset").set_value(None).run()
    assert not at.exception and not at.error
    assert at.segmented_control(key="train_preset").value == "fast"
    assert at.number_input(key="train_epochs").value == 7  # the edit is kept
    assert any("Changed: epochs" in c.value for c in at.caption)


def test_the_form_survives_a_visit_to_another_page():
    at = open_page()
    at.segmented_control(key="train_preset").set_value("efficient").run()
    at.number_input(key="train_epochs").set_value(3)
    at.button(key="train_add_block").click().run()
    at.switch_page("app_pages/home.py").run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.segmented_control(key="train_preset").value == "efficient"
    assert at.number_input(key="train_epochs").value == 3
    assert at.selectbox(key="train_block3_filters").value == 64
    assert at.selectbox(key="train_padding").value == preset("efficient").padding == "same"


def test_conv_blocks_can_be_added_and_removed():
    at = open_page()
    at.button(key="train_add_block").click().run()
    assert at.selectbox(key="train_block3_filters").value == 64  # a copy of the last block
    at.selectbox(key="train_block3_filters").set_value(128).run()
    at.button(key="train_remove_block0").click().run()
    filters = [at.selectbox(key=f"train_block{i}_filters").value for i in range(3)]
    assert filters == [64, 64, 128]
    assert [r for r in summary(at)["Layer"] if r.startswith("conv")] == ["conv1", "conv2",
                                                                           "conv3"]


def test_too_many_poolings_show_the_config_error_and_block_start():
    at = open_page()
    at.selectbox(key="train_padding").set_value("same").run()
    for _ in range(3):
        at.button(key="train_add_block").click().run()
    for i in range(6):
        at.toggle(key=f"train_block{i}_pool").set_value(True)
    at.run()
    assert not at.exception
    # The same check, made directly by the core, gives the message the page must show.
    params = preset("tutorial", dataset="digits", padding="same",
                    conv_blocks=[ConvBlock(64 if i else 32, 3, True) for i in range(6)])
    with pytest.raises(ConfigError) as error:
        params.validate((32, 32, 1))
    assert "After 6 poolings a 32×32 image is 0×0 — use at most 5." in str(error.value)
    assert [e.value for e in at.error] == [str(error.value)]
    assert at.button(key="train_start").disabled
    assert not [m for m in at.metric if m.label == "Parameters"]
    # Turning one pooling off makes it valid again.
    at.toggle(key="train_block5_pool").set_value(False).run()
    assert not at.error
    assert not at.button(key="train_start").disabled


def test_a_bad_dense_layer_list_is_explained():
    at = open_page()
    at.text_input(key="train_dense").input("128, lots").run()
    assert "Dense layers: write whole numbers separated by commas" in at.error[0].value
    assert at.button(key="train_start").disabled
    at.text_input(key="train_dense").input("128, 64").run()
    assert not at.error
    assert list(summary(at)["Layer"])[-3:] == ["dense1", "dense2", "classes"]


# --- training ------------------------------------------------------------------------------
def set_tiny_run(at, epochs, images, batch_size=32):
    at.number_input(key="train_epochs").set_value(epochs)
    at.selectbox(key="train_batch_size").set_value(batch_size)
    at.toggle(key="train_use_subset").set_value(True).run()  # enables the images input
    at.number_input(key="train_subset").set_value(images)
    at.selectbox(key="train_precision").set_value("float32")
    return at.run()


def chart_frames(at):
    """{y-axis title: DataFrame} for the page's Altair charts."""
    frames = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layer"][0]["encoding"]["y"]["title"]
        data = chart.proto.datasets[0].data.data
        frames[title] = pa.ipc.open_stream(io.BytesIO(data)).read_all().to_pandas()
    return frames


def texts(at):
    return " ".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.success,
                                           *at.warning, *at.error])


@pytest.mark.slow
def test_start_trains_a_run_and_shows_progress_then_results():
    at = set_tiny_run(open_page(), epochs=2, images=200)
    at.button(key="train_start").click().run()
    assert not at.exception
    [run] = runs.list_runs()
    assert at.session_state[common.SELECTED_RUN] == run.id
    params = run.config
    assert (params.dataset, params.epochs, params.train_size, params.batch_size) == (
        "digits", 2, 200, 32)
    # The live view of the new run: its state, and a Stop button while it is active
    # (its worker takes seconds to start, so the page drawn at the click shows it queued).
    assert at.selectbox(key="train_run").value == run.id
    assert at.button(key="train_stop").label in ("Cancel", "Stop training")

    status = support.wait_for(run, runs.FINAL_STATES)
    assert status["state"] == runs.FINISHED, status
    at.run()
    assert not at.exception
    assert metric(at, "Test accuracy") == f"{status['test_accuracy']:.1%}"
    assert metric(at, "Test loss") == f"{status['test_loss']:.3f}"
    assert status["message"] in texts(at)
    assert "evaluate" in [link.proto.page for link in at.get("page_link")]
    assert not [b for b in at.button if b.key == "train_stop"]

    # The charts hold what the run recorded: one point per epoch for training and
    # validation, at x = 1, 2, and a batch curve before them.
    epochs = [r for r in run.metrics() if r["kind"] == "epoch"]
    frames = chart_frames(at)
    assert set(frames) == {"Loss", "Accuracy"}
    for title, metric_name in (("Loss", "loss"), ("Accuracy", "accuracy")):
        frame = frames[title]
        validation = frame[frame.split == "Validation"]
        assert list(validation.epoch) == [1.0, 2.0]
        assert list(validation.value) == [r[f"val_{metric_name}"] for r in epochs]
        assert set(validation.kind) == {"whole epoch"}
        training = frame[(frame.split == "Training") & (frame.kind == "whole epoch")]
        assert list(training.epoch) == [1.0, 2.0]
        assert list(training.value) == [r[metric_name] for r in epochs]
        batches = frame[frame.kind == "recent batches"]
        assert len(batches) >= 1 and set(batches.split) == {"Training"}
        assert 0 < batches.epoch.min() and batches.epoch.max() <= 2


@pytest.mark.slow
def test_a_stopped_run_keeps_and_tests_its_network():
    at = set_tiny_run(open_page(), epochs=2, images=400, batch_size=8)
    at.button(key="train_start").click().run()
    [run] = runs.list_runs()
    # Paused after its first batch group, the run holds still while the page is checked.
    run.request(paused=True)
    status = support.wait_for(run, [runs.PAUSED])
    at.run()
    # Live: the progress bar counts epochs of 2 and batches of 400 / 8 = 50.
    records = [r for r in run.metrics() if r["kind"] in ("batch", "epoch")]
    step = records[-1]["step"]
    [bar] = at.get("progress")
    assert re.fullmatch(rf"Epoch 1 of 2 · batch {step} of 50( · .*)?", bar.proto.text), \
        bar.proto.text
    assert bar.proto.value == step  # of 100 batches in all
    assert "recent batches" in set(chart_frames(at)["Loss"].kind)
    # The learning rate can be halved while it trains; the worker records the change.
    at.button(key="train_lr_down").click().run()
    halved = run.config.learning_rate / 2
    assert run.control()["learning_rate"] == pytest.approx(halved)
    run.request(paused=False)
    support.wait_for_record(run, lambda r: r["kind"] == "batch" and r["step"] > step
                            and r["learning_rate"] == pytest.approx(halved))
    [change] = [r for r in run.metrics() if r.get("event") == "learning_rate"]
    assert (change["from"], change["to"]) == (run.config.learning_rate, halved)

    at.run()
    at.button(key="train_stop").click().run()
    assert not at.exception
    assert run.control().get("stop") is True
    assert "Stopping…" in texts(at)
    assert at.button(key="train_stop").disabled

    status = support.wait_for(run, runs.FINAL_STATES, timeout=60)
    assert status["state"] == runs.STOPPED, status
    at.run()
    assert status["message"].startswith("Stopped after")
    assert status["message"] in texts(at)
    assert metric(at, "Test accuracy") == f"{status['test_accuracy']:.1%}"
    assert "evaluate" in [link.proto.page for link in at.get("page_link")]


def test_a_run_started_while_another_trains_waits_in_line_and_can_be_cancelled():
    busy = runs.create_run(preset("fast", dataset="digits"), start=False)
    # This test plays the busy run's worker: it is alive and holds the training slot.
    with support.playing_worker(busy, slot=0):
        support.set_status(busy, state=runs.RUNNING, message="Training…")
        at = open_page()
        assert at.selectbox(key="train_run").value == busy.id  # the active run by default
        at.button(key="train_start").click().run()
        [new] = [run for run in runs.list_runs() if run.id != busy.id]
        assert at.session_state[common.SELECTED_RUN] == new.id
        assert new.state() == runs.QUEUED
        assert "Queued — 1st in line." in texts(at)
        assert at.button(key="train_stop").label == "Cancel"
        at.button(key="train_stop").click().run()
        status = support.wait_for(new, runs.FINAL_STATES, timeout=60)
        assert status == {**status, "state": runs.STOPPED,
                          "message": "Stopped before it started."}
        at.run()
        assert "Stopped before it started." in texts(at)


def test_the_batch_curve_undoes_keras_running_means():
    """Keras logs the mean since the epoch began; the thin curve shows the mean over the
    batches since the record before, smoothed (EMA, weight 0.6) — checked by hand."""
    run = runs.create_run(preset("fast", dataset="digits", epochs=2, batch_size=10),
                          start=False)
    lines = [  # 4 batches an epoch
        {"kind": "batch", "step": 1, "epoch": 1, "batch": 1, "loss": 2.0, "accuracy": 0.1},
        {"kind": "batch", "step": 3, "epoch": 1, "batch": 3, "loss": 1.5, "accuracy": 0.3},
        {"kind": "epoch", "step": 4, "epoch": 1, "batch": 4, "loss": 1.4, "accuracy": 0.35,
         "val_loss": 1.2, "val_accuracy": 0.5},
        {"kind": "batch", "step": 6, "epoch": 2, "batch": 2, "loss": 1.0, "accuracy": 0.6},
    ]
    run.metrics_path.write_text("".join(
        json.dumps({"batches_per_epoch": 4, "elapsed": 1.0, **line}) + "\n" for line in lines))
    support.set_status(run, state=runs.STOPPED, message="Stopped after 1 full epoch(s).")
    at = open_page()
    frames = chart_frames(at)
    # Batches 2–3 of epoch 1: (3 × 1.5 − 1 × 2.0) / 2 = 1.25; epoch 2 starts afresh: 1.0.
    recent = [2.0, 1.25, 1.0]
    smoothed = [2.0, 0.6 * 2.0 + 0.4 * 1.25]
    smoothed.append(0.6 * smoothed[1] + 0.4 * 1.0)
    loss = frames["Loss"]
    batches = loss[loss.kind == "recent batches"]
    assert list(batches.epoch) == [0.25, 0.75, 1.5]
    assert list(batches.value) == pytest.approx(smoothed)
    assert recent[1] < smoothed[1]  # smoothing lags behind the fall
    accuracy = frames["Accuracy"]
    # (3 × 0.3 − 0.1) / 2 = 0.4
    assert list(accuracy[accuracy.kind == "recent batches"].value) == pytest.approx(
        [0.1, 0.6 * 0.1 + 0.4 * 0.4, 0.6 * (0.6 * 0.1 + 0.4 * 0.4) + 0.4 * 0.6])
    assert list(loss[loss.split == "Validation"].value) == [1.2]
    assert "Stopped after 1 full epoch(s)." in texts(at)


def test_a_failed_run_shows_its_message():
    run = runs.create_run(preset("fast", dataset="digits", epochs=1), start=False)
    support.set_status(run, state=runs.FAILED, message="Training failed: out of memory.",
                      finished=time.time())
    at = open_page()
    assert at.selectbox(key="train_run").value == run.id
    assert "Training failed: out of memory." in [e.value for e in at.error]
    assert not at.get("vega_lite_chart")


def test_an_interrupted_run_says_so():
    run = runs.create_run(preset("fast", dataset="digits", epochs=1), start=False)
    # Queued with no worker process: every reader sees it interrupted (and none writes).
    at = open_page()
    assert run.status()["state"] == runs.INTERRUPTED
    assert run.raw_status()["state"] == runs.QUEUED
    assert any("ended unexpectedly" in w.value for w in at.warning)
