"""Evaluate: how well does a trained network do on test images it never saw, and where
does it go wrong?"""

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import charts, common, mistakes_gallery, run_view, visitor
from cnn import classroom, curves, datasets, presets, progress, runs
from cnn.errors import CnnError

RUN = "evaluate_run"
FLASH = "evaluate_flash"  # (kind, message) to show after a delete callback


def _delete(run: runs.Run) -> None:
    """Button callback: runs before the script, so the page redraws without the run."""
    try:
        classroom.check_control(visitor.person() or run_view.GUEST, run.status())
        runs.delete_run(run)
    except CnnError as error:
        st.session_state[FLASH] = ("error", str(error))
    else:
        st.session_state[FLASH] = ("success", f"Deleted run {run.id}.")
        st.session_state.pop(RUN, None)


def results(run: runs.Run, report: dict, status: dict) -> None:
    class_names = list(report["class_names"])
    accuracy_col, loss_col, f1_col, epochs_col = st.columns(4)
    accuracy_col.metric("Test accuracy", f"{report['test_accuracy']:.1%}", border=True,
                        help=f"Share of the {report['test_images']:,} test images classified "
                        "correctly. The network never saw them while training.")
    loss_col.metric("Test loss", f"{report['test_loss']:.3f}", border=True,
                    help="Cross-entropy on the test set (without label smoothing, so every "
                    "run is measured alike): lower is better.")
    f1_col.metric("Macro F1", f"{report['macro_f1']:.1%}", border=True,
                  help="F1 (balance of precision and recall) averaged over the classes, "
                  "so every class counts the same.")
    epochs = status.get("epochs_trained", status.get("epochs_completed"))
    epochs_col.metric("Epochs trained", progress.epochs_text(epochs), border=True,
                      help=status.get("message"))

    st.subheader("Learning curves")
    by_epoch = curves.epoch_metrics(run.metrics())
    if by_epoch.empty:
        st.caption("This run recorded no finished epoch, so there are no curves to show.")
    else:
        left, right = st.columns(2)
        left.altair_chart(charts.epoch_curve(by_epoch, "Loss"), width="stretch")
        right.altair_chart(charts.epoch_curve(by_epoch, "Accuracy"), width="stretch")
        st.caption("If validation loss rises while training loss keeps falling, the network "
                   "is memorising its training images (overfitting).")

    matrix = np.asarray(report["confusion_matrix"])
    st.subheader("Confusion matrix")
    st.caption("Each row is a true class, each column what the network answered. "
               "The diagonal holds the correct answers; dark cells off it are the "
               "classes the network mixes up." +
               ("" if len(class_names) <= charts.TEXT_LABEL_MAX_CLASSES
                else " Point at a cell to see its numbers."))
    st.altair_chart(charts.confusion(matrix, class_names), width="content")
    off_diagonal = matrix * (1 - np.eye(len(matrix), dtype=matrix.dtype))
    worst = [(off_diagonal[t, p], t, p) for t, p in zip(*np.unravel_index(
        np.argsort(-off_diagonal, axis=None)[:5], matrix.shape)) if off_diagonal[t, p] > 0]
    if worst:
        st.markdown("**Most often confused:** " + " · ".join(
            f"{common.md(class_names[t])} → {common.md(class_names[p])} ({count}×)"
            for count, t, p in worst))

    st.subheader("Per class")
    table = pd.DataFrame(report["per_class"]).rename(columns={
        "class": "Class", "precision": "Precision", "recall": "Recall", "f1": "F1",
        "support": "Test images"})
    for column in ("Precision", "Recall", "F1"):
        table[column] *= 100  # for a fixed one-decimal percent format
    score = {"min_value": 0.0, "max_value": 100.0, "format": "%.1f%%"}
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "Precision": st.column_config.ProgressColumn(
            help="Of the images the network called this class, the share that were.", **score),
        "Recall": st.column_config.ProgressColumn(
            help="Of the images of this class, the share the network found.", **score),
        "F1": st.column_config.ProgressColumn(help="Balance of precision and recall.", **score),
        "Test images": st.column_config.NumberColumn(help="Test images of this class."),
    })


def compare(run: runs.Run, candidates: list[runs.Run]) -> None:
    compare_ids = st.multiselect(
        "Runs to compare", [r.id for r in candidates], default=[run.id],
        key="evaluate_compare", format_func={r.id: common.run_label(r) for r in candidates}.get)
    chosen = [r for r in candidates if r.id in compare_ids]
    if len(chosen) < 2:
        st.info("Pick two or more runs to compare their validation accuracy and settings.")
        return
    frames = []
    for other in chosen:
        table = curves.epoch_metrics(other.metrics())
        table = table[(table.metric == "Accuracy") & (table.split == curves.VALIDATION)]
        frames.append(table.assign(run=other.id))
    overlaid = pd.concat(frames)
    if overlaid.empty:
        st.caption("None of these runs kept validation images, so there are no curves.")
    else:
        st.altair_chart(charts.compare_runs(overlaid), width="stretch")
    settings = {}
    for other in chosen:
        try:
            settings[other.id] = {k.replace("_", " "): presets.describe_value(k, v)
                                  for k, v in other.config.to_dict().items()}
        except CnnError:  # a damaged config.json: its curve is shown, its settings not
            settings[other.id] = {}
    configs = pd.DataFrame.from_dict(settings, orient="index")
    differing = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
    compared = configs[differing].copy()
    compared.insert(0, "test accuracy",
                    [(r.evaluation() or {}).get("test_accuracy") for r in chosen])
    changes = [", ".join(f"{row.text} at epoch {row.epoch:.1f}" for row in
                         curves.learning_rate_changes(r.metrics()).itertuples())
               for r in chosen]
    if any(changes):  # changed live, with the buttons on the Train page
        compared["learning rate changed live"] = [c or "—" for c in changes]
    st.markdown("**Settings that differ**" if differing else
                "**These runs used the same settings** (only the results differ).")
    st.dataframe(compared.rename_axis("run").reset_index(), hide_index=True,
                 width="stretch", column_config={
                     "test accuracy": st.column_config.NumberColumn(format="percent")})


def files(run: runs.Run, status: dict) -> None:
    st.markdown(f"**Run** `{run.id}` — {common.md(status.get('message', ''))}")
    model_col, history_col = st.columns(2)
    if run.has_model():
        model_col.download_button(
            "Download the model (.keras)", run.model_path.read_bytes,
            icon=":material/neurology:", file_name=f"{run.id}.keras",
            mime="application/octet-stream", key="evaluate_download_model", on_click="ignore",
            width="stretch", help="Open it in Python with keras.saving.load_model(path).")
    if run.history_path.exists():
        history_col.download_button(
            "Download the training history (.csv)", run.history_path.read_bytes,
            icon=":material/table:", file_name=f"{run.id}-history.csv", mime="text/csv",
            key="evaluate_download_history", on_click="ignore", width="stretch",
            help="Loss, accuracy and learning rate per epoch, for a spreadsheet.")
    st.divider()
    active = status.get("state") in runs.ACTIVE_STATES
    if active:
        st.warning("This run is still training; stop it on the Train page before deleting it.")
    if not classroom.may_control(visitor.person() or run_view.GUEST, status):
        st.caption(f"Only {common.md(status.get('owner') or 'its owner')} or the teacher "
                   "can delete this run.")
        return
    with st.popover("Delete this run", icon=":material/delete:", disabled=active):
        st.markdown(f"Delete run `{run.id}`, its model and its results for good? "
                    "This cannot be undone.")
        st.button("Yes, delete it", type="primary", key="evaluate_delete",
                  on_click=_delete, args=(run,))


# --- the page -------------------------------------------------------------------------------
st.title("📊 Evaluate")
if flash := st.session_state.pop(FLASH, None):
    getattr(st, flash[0])(common.md(flash[1]))

candidates = common.finished_runs()
common.watch_runs(bool(runs.active_runs()), finished_only=True)
damaged = [(r, r.evaluation_problem()) for r in runs.list_runs()
           if r.has_model() and r.evaluation_path.exists() and r.evaluation() is None]
if damaged:
    with st.expander(f"{len(damaged)} run(s) cannot be shown: their results are damaged"):
        for other, problem in damaged:
            st.markdown(f"- `{other.id}`: {common.md(problem)}")
        st.caption("Test them again with `python -m cnn evaluate RUN_ID --recompute`, or "
                   "delete them.")
common.require(
    bool(candidates),
    "No trained network yet. Train one first; when it has finished, come back here to see "
    "how well it does on test images it never saw.",
    common.TRAIN, "Go to Train")

run = common.select_run(candidates, RUN, "Trained network")
report, status = run.evaluation(), run.status()
if report is None:  # damaged or deleted since the list was made
    common.show_error(f"The results of run {run.id} cannot be read: "
                      f"{run.evaluation_problem()}.")
    st.stop()
try:
    info = datasets.get_info(run.config.dataset)
except CnnError as error:
    common.show_error(error)
    files(run, status)
    st.stop()

tab_results, tab_mistakes, tab_compare, tab_files = st.tabs(
    [":material/monitoring: Results", ":material/error: Mistakes",
     ":material/compare_arrows: Compare runs", ":material/download: Download / delete"])
with tab_results:
    results(run, report, status)
with tab_mistakes:
    mistakes_gallery.show(run, report, info)
with tab_compare:
    compare(run, candidates)
with tab_files:
    files(run, status)
