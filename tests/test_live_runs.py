"""What all browsers share of a run (app_pages.live_runs), and the server's script runs
leaving Keras alone. The pages built on them are tested in test_page_train/home."""

import json
import re

import keras
import pandas as pd
import pyarrow as pa
import support
from streamlit.testing.v1 import AppTest

from app_pages import charts, live_runs
from cnn import curves, runs
from cnn.presets import preset

BATCH = {"kind": "batch", "epoch": 1, "batches_per_epoch": 8, "learning_rate": 0.002,
         "images_per_second": 100.0}


def _tiny():
    return preset("fast", dataset="digits", train_size=64, epochs=2, batch_size=8,
                  precision="float32")


def _write(run, *records):
    with open(run.metrics_path, "a") as f:
        f.writelines(json.dumps(record) + "\n" for record in records)


def _decoded(arrow: bytes) -> pd.DataFrame:
    """Arrow IPC bytes back into a DataFrame, categories as plain text."""
    data = pa.ipc.open_stream(arrow).read_all().to_pandas()
    return data.astype({c: object for c in data.columns if data[c].dtype == "category"})


def _batch(step, loss, accuracy):
    return {**BATCH, "step": step, "batch": step, "loss": loss, "accuracy": accuracy,
            "elapsed": step / 10}


def test_a_snapshot_holds_what_the_pages_show_and_sees_a_new_state_at_once():
    run = runs.create_run(_tiny(), start=False)
    with support.playing_worker(run):
        support.set_status(run, state=runs.RUNNING, message="Training…")
        _write(run, {"kind": "start", "step": 0, "epoch": 0, "batch": 0,
                     "batches_per_epoch": 8, "loss": 2.3, "accuracy": 0.1, "elapsed": 0.0},
               *(_batch(step, 2.3 - step / 10, 0.1 + step / 20) for step in range(1, 4)))
        snap = live_runs.snapshot(run.id)
        assert snap.state == runs.RUNNING and snap.params == run.config
        assert snap.progress[1].startswith("Epoch 1 of 2 · batch 3 of 8")
        assert snap.short_progress == (3 / 16, "Epoch 1 of 2 · batch 3 of 8")
        assert snap.learning_rate_now == 0.002 and not snap.has_epoch
        # The charts' data, made once for every browser, is the curves' data as Arrow.
        for metric in ("loss", "accuracy"):
            expected = curves.training_curves(run.metrics(), metric, 8)
            pd.testing.assert_frame_equal(_decoded(snap.curves[metric]), expected,
                                          check_dtype=False)
        spec = snap.chart("loss", big=False, height=340)
        assert spec["datasets"] == {"points": snap.curves["loss"]}
        # A new state is seen at once (each status write is a new version), not a second
        # later: the page redraws for it.
        support.set_status(run, state=runs.PAUSED, message="Paused — press Resume or Step.")
        assert live_runs.snapshot(run.id).state == runs.PAUSED
    # Its worker gone, the run is interrupted.
    support.set_status(run, state=runs.RUNNING, message="Training…")
    assert live_runs.snapshot(run.id).state == runs.INTERRUPTED


def test_a_damaged_run_gives_a_snapshot_that_says_what_is_wrong():
    run = runs.create_run(_tiny(), start=False)
    run.config_path.write_text("[1, 2]")
    snap = live_runs.snapshot(run.id)
    assert snap.params is None and "config.json" in snap.problem


def test_browsers_watching_a_run_are_counted_while_they_look():
    run_id = "2026-11-26_000000_digits_watch"
    for browser in ("a", "b", "b", "c"):
        live_runs.watching(run_id, browser)
    assert live_runs.watchers(run_id) == 3
    assert live_runs.watchers("another-run") == 0
    assert not live_runs.is_crowd(run_id)
    for browser in range(live_runs.MANY_WATCHERS - 2):
        live_runs.watching(run_id, f"class-{browser}")
    assert live_runs.watchers(run_id) == live_runs.MANY_WATCHERS + 1
    assert live_runs.is_crowd(run_id)  # they see its curves every 1.5 s, not 1 s
    assert live_runs.crowd_changed(run_id, crowd=False)
    assert not live_runs.crowd_changed(run_id, crowd=True)
    # Those that stopped looking (here: all, with no time allowed) no longer count.
    assert live_runs.watchers(run_id, within=0.0) == 0
    assert live_runs.watchers(run_id) == 0
    assert live_runs.crowd_changed(run_id, crowd=True)  # the crowd has left


def test_arrow_bytes_are_the_data_as_streamlit_sends_it():
    data = pd.DataFrame({"epoch": [0.0, 0.5, 1.0], "value": [2.3, 1.1, 0.7],
                         "split": ["Training"] * 3, "kind": ["before training",
                                                            "recent batches", "whole epoch"]})
    stream = pa.ipc.open_stream(charts.arrow_bytes(data))
    # The text columns go as categories (each value once, then small numbers).
    assert pa.types.is_dictionary(stream.schema.field("kind").type)
    pd.testing.assert_frame_equal(_decoded(charts.arrow_bytes(data)), data,
                                  check_dtype=False)


def test_script_runs_leave_the_keras_session_alone():
    """Streamlit clears the Keras session after each script run once Keras is imported
    (~250 ms each, and every model's kernels built again); the app turns that off. Keras
    numbers new layers from a counter that clear_session resets."""
    at = AppTest.from_file(str(support.REPO / "streamlit_app.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception

    def number(name: str) -> int:
        found = re.fullmatch(r"dense(?:_(\d+))?", name)
        assert found, name
        return int(found.group(1) or 0)

    before = number(keras.layers.Dense(1).name)
    at.run()
    at.run()
    assert not at.exception, at.exception
    assert number(keras.layers.Dense(1).name) == before + 1
