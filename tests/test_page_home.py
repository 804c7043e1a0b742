"""The Home page, run through the real app with AppTest."""

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

import support
from cnn import runs, training
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent
STEPS = ["Data", "Preprocess", "Model", "Compile", "Train", "Evaluate"]


def open_home() -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.run()  # Home is the default page
    assert not at.exception, at.exception
    return at


def _tiny():
    return preset("fast", dataset="digits", train_size=64, epochs=2, batch_size=8,
                  precision="float32")


def test_the_six_steps_each_with_a_sentence_and_a_link():
    at = open_home()
    headings = [m.value for m in at.markdown if m.value.startswith("#### ")]
    assert [h.split(" · ")[1] for h in headings] == STEPS
    assert [h.split(" · ")[0][-1] for h in headings] == list("123456")
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    pages = [page for _, page in links[:6]]
    assert pages == ["data", "train", "train", "train", "train", "evaluate"]
    assert ("Classify", "classify") in links
    assert any("scaled" in m.value or "0–1" in m.value for m in at.markdown)
    assert "Nothing is training right now." in [c.value for c in at.caption]
    assert "No network has finished training yet." in [c.value for c in at.caption]


def test_an_active_run_shows_with_its_progress():
    run = runs.create_run(_tiny(), start=False)
    # This test plays the worker: a live process recorded as its worker makes a run alive.
    with support.playing_worker(run):
        support.set_status(run, state=runs.RUNNING, message="Training…")
        record = {"kind": "batch", "step": 3, "epoch": 1, "batch": 3, "batches_per_epoch": 8,
                  "loss": 2.1, "accuracy": 0.2, "learning_rate": 0.002,
                  "images_per_second": 100.0, "elapsed": 1.0}
        run.metrics_path.write_text(json.dumps(record) + "\n")
        at = open_home()
        assert any(run.id in m.value and "running" in m.value for m in at.markdown)
        [bar] = at.get("progress")
        assert bar.proto.text == "Epoch 1 of 2 · batch 3 of 8"
        assert bar.proto.value == 18  # 3 of 2 × 8 batches
        assert "train" in [link.proto.page for link in at.get("page_link")]
    # Its worker is gone: the page no longer lists it as training.
    at.run()
    assert not at.get("progress")
    assert "Nothing is training right now." in [c.value for c in at.caption]


def test_the_latest_finished_run_shows_its_test_accuracy():
    older = runs.create_run(_tiny(), start=False)
    training.execute(older, min_record_interval=0)
    newest = runs.create_run(_tiny().replace(epochs=1), start=False)
    status = training.execute(newest, min_record_interval=0)
    assert status["state"] == runs.FINISHED, status
    at = open_home()
    [accuracy] = [m for m in at.metric if m.label == "Test accuracy"]
    assert accuracy.value == f"{status['test_accuracy']:.1%}"
    assert any(newest.id in c.value for c in at.caption)
    assert "evaluate" in [link.proto.page for link in at.get("page_link")][6:]
