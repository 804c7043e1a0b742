"""The Evaluate page, run through the real app with AppTest on tiny finished digits runs."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import support
from cnn import datasets, runs, training
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent
PAGE = "app_pages/evaluate.py"


def _train(root, **changes):
    settings = {"dataset": "digits", "train_size": 128, "epochs": 2, "batch_size": 32,
                "precision": "float32", **changes}
    params = preset("fast", **settings)
    run = runs.create_run(params, root=root, start=False)
    status = training.execute(run, min_record_interval=0)
    assert status["state"] == runs.FINISHED, status
    return run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two finished runs, trained once for the module, newest first: 2 epochs at the
    preset's learning rate, and an older one of 1 epoch at another rate."""
    root = tmp_path_factory.mktemp("trained-runs")
    older = _train(root, epochs=1, learning_rate=0.004)
    return [_train(root), older]


@pytest.fixture
def copy_runs(trained):
    """Copy the trained runs into this test's own runs folder; returns the copies."""
    def copy(count=2):
        root = runs.runs_dir()
        root.mkdir(parents=True, exist_ok=True)
        for run in trained[:count]:
            shutil.copytree(run.path, root / run.id)
        return [runs.get_run(run.id) for run in trained[:count]]
    return copy


def open_page() -> AppTest:
    return support.open_page(PAGE, timeout=60)


def table_with(at, column: str):
    """The first table on the page that has `column` (st.dataframe keys are not exposed)."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def chart_data(at, spec_test):
    """The (first) dataset of the first chart whose spec satisfies `spec_test`."""
    for chart in at.get("vega_lite_chart"):
        if spec_test(json.loads(chart.proto.spec)):
            table = pa.ipc.open_stream(io.BytesIO(chart.proto.datasets[0].data.data)).read_all()
            return table.to_pandas()
    raise AssertionError("no such chart")


def test_without_a_finished_run_the_page_points_to_train():
    at = open_page()
    assert "No trained network yet" in at.info[0].value
    links = at.get("page_link")
    assert [(link.proto.label, link.proto.page) for link in links] == [("Go to Train", "train")]
    assert not at.get("metric")


def test_results_match_the_stored_evaluation(copy_runs):
    newest, _ = copy_runs()
    at = open_page()
    report = newest.evaluation()
    # The newest run is picked by default.
    assert at.selectbox(key="evaluate_run").value == newest.id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{report['test_accuracy']:.1%}"
    assert metrics["Test loss"] == f"{report['test_loss']:.3f}"
    assert metrics["Epochs trained"] == "2"

    # Per-class table: the 10 digits, supports as counted from the test labels (oracle).
    table = table_with(at, "Precision")
    expected_support = np.bincount(datasets.load("digits").y_test, minlength=10)
    assert list(table["Class"]) == list("0123456789")
    assert list(table["Test images"]) == expected_support.tolist()
    assert table["Test images"].sum() == 360

    # Confusion matrix: a rect heatmap with a text layer; its counts are the stored matrix.
    matrix = np.asarray(report["confusion_matrix"])
    cells = chart_data(at, lambda spec: "layer" in spec and any(
        layer.get("mark", {}).get("type") == "rect" for layer in spec["layer"]))
    assert len(cells) == 100
    assert cells["count"].sum() == 360
    diagonal = cells[cells["true"] == cells["predicted"]]["count"].sum()
    assert diagonal == np.trace(matrix)
    assert diagonal / 360 == pytest.approx(report["test_accuracy"], abs=1e-6)

    # Learning curves: loss and accuracy, training and validation, one point per epoch.
    curves = chart_data(at, lambda spec: spec.get("title") == "Accuracy")
    assert sorted(set(curves["split"])) == ["Training", "Validation"]
    assert sorted(curves["epoch"]) == [1, 1, 2, 2]


def test_gallery_shows_the_mistakes(copy_runs):
    newest, = copy_runs(1)
    with np.load(newest.predictions_path) as predictions:
        y_true, y_pred = predictions["y_true"], predictions["y_pred"]
        confidence = predictions["confidence"]
    wrong = np.flatnonzero(y_true != y_pred)
    assert len(wrong) > 24  # a 2-epoch run on 128 images makes plenty of mistakes

    at = open_page()
    summary = next(m.value for m in at.markdown if m.value.startswith("Showing"))
    assert summary.startswith(f"Showing **24** of **{len(wrong)}** misclassified")
    assert len(at.get("image")) == 24
    # Most confident mistake first: its true and predicted class are on the first card.
    first = wrong[np.argmax(confidence[wrong])]
    cards = [m.value for m in at.markdown if ":red[" in m.value]
    assert cards[0].startswith(f"**{y_true[first]}** → :red[{y_pred[first]}] "
                               f"({confidence[first]:.0%})")

    # Only the mistakes on one true class.
    digit = int(np.bincount(y_true[wrong]).argmax())
    at.selectbox(key="evaluate_true_class").set_value(digit).run()
    of_digit = int(((y_true == digit) & (y_true != y_pred)).sum())
    summary = next(m.value for m in at.markdown if m.value.startswith("Showing"))
    shown = min(24, of_digit)
    assert summary.startswith(f"Showing **{shown}** of **{of_digit}** misclassified")
    assert len(at.get("image")) == shown


def test_gallery_explains_a_missing_dataset_and_the_rest_still_works(copy_runs):
    run, _ = copy_runs()
    # As if the run had trained on MNIST, which this test's empty data folder lacks.
    config = json.loads(run.config_path.read_text())
    run.config_path.write_text(json.dumps({**config, "dataset": "mnist"}))
    at = open_page()
    assert any("no longer on this computer" in i.value for i in at.info)
    assert not at.get("image")
    assert at.metric[0].value == f"{run.evaluation()['test_accuracy']:.1%}"
    assert len(table_with(at, "Precision")) == 10


def test_compare_shows_the_settings_that_differ(copy_runs):
    newest, older = copy_runs()
    at = open_page()
    assert any("Pick two or more runs" in i.value for i in at.info)
    at.multiselect(key="evaluate_compare").set_value([newest.id, older.id]).run()
    assert not at.exception
    table = table_with(at, "test accuracy")
    assert list(table["run"]) == [newest.id, older.id]
    assert list(table["epochs"]) == [2, 1]
    assert list(table["learning rate"]) == [0.002, 0.004]
    assert "batch size" not in table  # the same in both
    assert table["test accuracy"].tolist() == pytest.approx(
        [newest.evaluation()["test_accuracy"], older.evaluation()["test_accuracy"]])
    overlaid = chart_data(at, lambda spec: spec.get("title") == "Validation accuracy")
    assert sorted(set(overlaid["run"])) == sorted([newest.id, older.id])


def test_downloads_offer_the_model_and_history(copy_runs):
    copy_runs(1)
    at = open_page()
    labels = [button.proto.label for button in at.get("download_button")]
    assert labels == ["Download the model (.keras)", "Download the training history (.csv)"]


def test_deleting_runs(copy_runs):
    newest, older = copy_runs()
    at = open_page()
    at.button(key="evaluate_delete").click().run()
    assert not at.exception
    assert [r.id for r in runs.list_runs()] == [older.id]
    assert at.success[0].value == f"Deleted run {newest.id}."
    assert at.selectbox(key="evaluate_run").value == older.id
    assert len(at.selectbox(key="evaluate_run").options) == 1

    at.button(key="evaluate_delete").click().run()
    assert runs.list_runs() == []
    assert "No trained network yet" in at.info[0].value


def test_a_run_still_training_is_not_deleted(copy_runs):
    run, = copy_runs(1)
    support.set_status(run, state=runs.RUNNING)
    with support.playing_worker(run):  # as its worker would: the run is alive
        at = open_page()
        assert any("still training" in w.value for w in at.warning)
        at.button(key="evaluate_delete").click().run()
        assert run.path.exists()
        assert "still training" in at.error[0].value


def test_a_run_picked_here_is_the_one_classify_starts_on(copy_runs):
    newest, older = copy_runs()
    at = open_page()
    # Only opening the page chooses nothing (the Train page keeps following its run).
    assert at.session_state["selected_run"] is None
    at.selectbox(key="evaluate_run").set_value(older.id).run()
    assert at.metric[0].value == f"{older.evaluation()['test_accuracy']:.1%}"
    assert at.session_state["selected_run"] == older.id
    at.switch_page("app_pages/classify.py").run()
    assert not at.exception
    assert at.selectbox(key="classify_run").value == older.id
