"""Evaluate: how well does a trained network do on test images it never saw, and where
does it go wrong?"""

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from app_pages import common
from cnn import curves, datasets, evaluation, runs
from cnn.errors import CnnError

RUN = "evaluate_run"
FLASH = "evaluate_flash"  # (kind, message) to show after a delete callback
TEXT_LABEL_MAX_CLASSES = 20  # above this, counts on the confusion-matrix cells are unreadable


def _delete(run: runs.Run) -> None:
    """Button callback: runs before the script, so the page redraws without the run."""
    try:
        runs.delete_run(run)
    except CnnError as error:
        st.session_state[FLASH] = ("error", str(error))
    else:
        st.session_state[FLASH] = ("success", f"Deleted run {run.id}.")
        st.session_state.pop(RUN, None)


def curve(data: pd.DataFrame, metric: str) -> alt.Chart:
    """Training vs validation per epoch. The legend sits inside the plot, in the corner the
    curves usually leave empty (loss falls, accuracy rises)."""
    percent = metric == "Accuracy"
    y_scale = alt.Scale(domain=[0, 1]) if percent else alt.Scale(zero=True)
    return alt.Chart(data[data.metric == metric], title=metric).mark_line(
        point=alt.OverlayMarkDef(size=70), strokeWidth=3).encode(
        x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=metric, scale=y_scale,
                axis=alt.Axis(format=".0%" if percent else ".2f")),
        color=alt.Color("split:N", title=None, scale=common.SPLIT_COLOURS,
                        legend=alt.Legend(orient="bottom-right" if percent else "top-right",
                                          labelFontSize=14, symbolSize=120, padding=8,
                                          fillColor="rgba(255,255,255,0.85)")),
        tooltip=[alt.Tooltip("epoch:Q", title="Epoch"), alt.Tooltip("split:N", title="Data"),
                 alt.Tooltip("value:Q", title=metric, format=".1%" if percent else ".3f")],
    ).properties(height=340).configure_axis(labelFontSize=13, titleFontSize=14)


def confusion_chart(matrix: np.ndarray, class_names: list[str]) -> alt.LayerChart:
    """Heatmap, rows = true class, columns = predicted; coloured by the share of each true
    class (so rare and common classes compare), with the counts written on the cells."""
    n = len(class_names)
    support = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0)
    true_idx, pred_idx = np.indices(matrix.shape)
    data = pd.DataFrame({
        "true": np.asarray(class_names)[true_idx.ravel()],
        "predicted": np.asarray(class_names)[pred_idx.ravel()],
        "count": matrix.ravel(), "share": share.ravel(),
        "correct": (true_idx == pred_idx).ravel(),
    })
    cell = 48 if n <= 10 else 28 if n <= TEXT_LABEL_MAX_CLASSES else 9
    axis = {"labelFontSize": 13 if n <= TEXT_LABEL_MAX_CLASSES else 7, "labelLimit": 110,
            "labelOverlap": False, "titleFontSize": 14}
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=class_names, title="Predicted class",
                axis=alt.Axis(orient="top", labelAngle=-45 if n > 10 else 0, **axis)),
        y=alt.Y("true:N", sort=class_names, title="True class", axis=alt.Axis(**axis)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=0.5 if n > 20 else 1).encode(
        color=alt.Color("share:Q", title="Share of the true class",
                        scale=alt.Scale(domain=[0, 1], range=["#F7FBFF", "#08519C"]),
                        legend=alt.Legend(format=".0%", orient="bottom", gradientLength=240)),
        tooltip=[alt.Tooltip("true:N", title="True"), alt.Tooltip("predicted:N", title="Predicted"),
                 alt.Tooltip("count:Q", title="Images"),
                 alt.Tooltip("share:Q", title="Share of the true class", format=".1%")],
    )
    layers = [cells]
    if n <= TEXT_LABEL_MAX_CLASSES:
        # Zeros stay blank: the few non-zero cells off the diagonal are what matters.
        layers.append(base.transform_filter("datum.count > 0").mark_text(
            fontSize=16 if n <= 10 else 11).encode(
            text=alt.Text("count:Q"),
            color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("#262730")),
        ))
    return alt.layer(*layers).properties(width=cell * n, height=cell * n)


def flatten_config(run: runs.Run) -> dict[str, object]:
    """The run's hyperparameters as one readable value per field (for the compare table)."""
    config = run.config.to_dict()
    blocks = config.pop("conv_blocks")
    config["conv_blocks"] = " → ".join(
        f"{b['filters']}×{b['kernel_size']}²{'+pool' if b['pool'] else ''}" for b in blocks)
    config["dense_units"] = " → ".join(map(str, config["dense_units"])) or "none"
    return {k.replace("_", " "): ("all" if v is None else v) for k, v in config.items()}


# --- the page -------------------------------------------------------------------------------
st.title("📊 Evaluate")
if flash := st.session_state.pop(FLASH, None):
    getattr(st, flash[0])(flash[1])

candidates = common.finished_runs()
common.require(
    bool(candidates),
    "No trained network yet. Train one first; when it has finished, come back here to see "
    "how well it does on test images it never saw.",
    common.TRAIN, "Go to Train")

run = common.select_run(candidates, RUN, "Trained network")
report = run.evaluation()
status = run.status()
class_names = list(report["class_names"])
try:
    info = datasets.get_info(run.config.dataset)
except CnnError:
    info = None

tab_results, tab_mistakes, tab_compare, tab_files = st.tabs(
    [":material/monitoring: Results", ":material/error: Mistakes",
     ":material/compare_arrows: Compare runs", ":material/download: Download / delete"])

with tab_results:
    accuracy_col, loss_col, f1_col, epochs_col = st.columns(4)
    accuracy_col.metric("Test accuracy", f"{report['test_accuracy']:.1%}", border=True,
                        help=f"Share of the {report['test_images']:,} test images classified "
                        "correctly. The network never saw them while training.")
    loss_col.metric("Test loss", f"{report['test_loss']:.3f}", border=True,
                    help="Cross-entropy on the test set: lower is better.")
    f1_col.metric("Macro F1", f"{report['macro_f1']:.1%}", border=True,
                  help="F1 (balance of precision and recall) averaged over the classes, "
                  "so every class counts the same.")
    epochs = status.get("epochs_completed")
    epochs_col.metric("Epochs trained", "?" if epochs is None else epochs, border=True,
                      help=status.get("message"))

    st.subheader("Learning curves")
    by_epoch = curves.epoch_metrics(run.metrics())
    if by_epoch.empty:
        st.caption("This run recorded no finished epoch, so there are no curves to show.")
    else:
        left, right = st.columns(2)
        left.altair_chart(curve(by_epoch, "Loss"), width="stretch")
        right.altair_chart(curve(by_epoch, "Accuracy"), width="stretch")
        st.caption("If validation loss rises while training loss keeps falling, the network "
                   "is memorising its training images (overfitting).")

    matrix = np.asarray(report["confusion_matrix"])
    st.subheader("Confusion matrix")
    st.caption("Each row is a true class, each column what the network answered. "
               "The diagonal holds the correct answers; dark cells off it are the "
               "classes the network mixes up." +
               ("" if len(class_names) <= TEXT_LABEL_MAX_CLASSES
                else " Point at a cell to see its numbers."))
    st.altair_chart(confusion_chart(matrix, class_names), width="content")
    off_diagonal = matrix * (1 - np.eye(len(matrix), dtype=matrix.dtype))
    worst = [(off_diagonal[t, p], t, p) for t, p in zip(*np.unravel_index(
        np.argsort(-off_diagonal, axis=None)[:5], matrix.shape)) if off_diagonal[t, p] > 0]
    if worst:
        st.markdown("**Most often confused:** " + " · ".join(
            f"{class_names[t]} → {class_names[p]} ({count}×)" for count, t, p in worst))

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

with tab_mistakes:
    if not run.predictions_path.exists():
        st.info("This run has no saved predictions, so its mistakes cannot be shown.")
    elif info is None or not datasets.is_available(info.name):
        st.info(f"The test images of {info.title if info else run.config.dataset} are no "
                "longer on this computer, so the mistakes cannot be shown. Everything else "
                "about this run still works.")
        st.page_link(common.DATA, label="Get the images again on the Data page", icon="🖼️")
    else:
        with np.load(run.predictions_path) as predictions:
            y_true, y_pred = predictions["y_true"], predictions["y_pred"]
            confidence = predictions["confidence"]
        x_test = common.load_dataset(info.name).x_test
        if len(x_test) != len(y_true):
            st.warning(f"The {info.title} test set on disk no longer matches this run's "
                       "predictions, so its mistakes cannot be shown.")
        else:
            order_col, class_col, limit_col = st.columns(3)
            most_confident = order_col.toggle(
                "Most confident mistakes first", value=True, key="evaluate_confident_first",
                help="On: the mistakes the network was surest about. Off: in test-set order.")
            true_class = class_col.selectbox(
                "True class", [None, *range(len(class_names))], key="evaluate_true_class",
                format_func=lambda c: "All classes" if c is None else class_names[c])
            limit = limit_col.select_slider("Show at most", [12, 24, 48, 96], value=24,
                                            key="evaluate_gallery_size")
            subset = np.flatnonzero(y_true == true_class) if true_class is not None else None
            if subset is None:
                shown = evaluation.mistakes(y_true, y_pred, confidence, limit, most_confident)
                total = int((y_true != y_pred).sum())
            else:
                local = evaluation.mistakes(y_true[subset], y_pred[subset], confidence[subset],
                                            limit, most_confident)
                shown = subset[local]
                total = int((y_true[subset] != y_pred[subset]).sum())
            where = "" if true_class is None else f" of class {class_names[true_class]}"
            if total == 0:
                st.success(f"No misclassified test images{where}.", icon=":material/celebration:")
            else:
                st.markdown(f"Showing **{len(shown)}** of **{total}** misclassified test "
                            f"images{where}: **true class** → predicted (confidence).")
                with st.container(horizontal=True, gap="small", key="evaluate_gallery"):
                    for i in shown:
                        with st.container(width=150, border=True, gap="small"):
                            st.image(common.upscale(x_test[i], 128), width=128)
                            st.markdown(f"**{class_names[y_true[i]]}** → "
                                        f":red[{class_names[y_pred[i]]}] "
                                        f"({confidence[i]:.0%})")

with tab_compare:
    compare_ids = st.multiselect(
        "Runs to compare", [r.id for r in candidates], default=[run.id],
        key="evaluate_compare", format_func={r.id: common.run_label(r) for r in candidates}.get)
    chosen = [r for r in candidates if r.id in compare_ids]
    if len(chosen) < 2:
        st.info("Pick two or more runs to compare their validation accuracy and settings.")
    else:
        frames = []
        for other in chosen:
            table_ = curves.epoch_metrics(other.metrics())
            table_ = table_[(table_.metric == "Accuracy") & (table_.split == curves.VALIDATION)]
            frames.append(table_.assign(run=other.id))
        overlaid = pd.concat(frames)
        if overlaid.empty:
            st.caption("None of these runs kept validation images, so there are no curves.")
        else:
            st.altair_chart(alt.Chart(overlaid, title="Validation accuracy").mark_line(
                point=True, strokeWidth=3).encode(
                x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1, format="d")),
                y=alt.Y("value:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]),
                        axis=alt.Axis(format=".0%")),
                color=alt.Color("run:N", title=None, scale=alt.Scale(scheme="tableau10"),
                                legend=alt.Legend(orient="bottom-right", labelLimit=400,
                                                  labelFontSize=13, padding=8,
                                                  fillColor="rgba(255,255,255,0.85)")),
                tooltip=["run:N", "epoch:Q", alt.Tooltip("value:Q", format=".1%")],
            ).properties(height=380).configure_axis(labelFontSize=13, titleFontSize=14),
                width="stretch")
        configs = pd.DataFrame([flatten_config(r) for r in chosen],
                               index=[r.id for r in chosen])
        differing = [c for c in configs.columns if configs[c].astype(str).nunique() > 1]
        compared = configs[differing].copy()
        compared.insert(0, "test accuracy",
                        [(r.evaluation() or {}).get("test_accuracy") for r in chosen])
        st.markdown("**Settings that differ**" if differing else
                    "**These runs used the same settings** (only the results differ).")
        st.dataframe(compared.rename_axis("run").reset_index(), hide_index=True,
                     width="stretch", column_config={
                         "test accuracy": st.column_config.NumberColumn(format="percent")})

with tab_files:
    st.markdown(f"**Run** `{run.id}` — {status.get('message', '')}")
    model_col, history_col = st.columns(2)
    model_col.download_button(
        "Download the model (.keras)", run.model_path.read_bytes, icon=":material/neurology:",
        file_name=f"{run.id}.keras", mime="application/octet-stream",
        key="evaluate_download_model", on_click="ignore", width="stretch",
        help="Open it in Python with keras.saving.load_model(path).")
    if run.history_path.exists():
        history_col.download_button(
            "Download the training history (.csv)", run.history_path.read_bytes,
            icon=":material/table:",
            file_name=f"{run.id}-history.csv", mime="text/csv",
            key="evaluate_download_history", on_click="ignore", width="stretch",
            help="Loss and accuracy per epoch, for a spreadsheet.")
    st.divider()
    if status.get("state") in runs.ACTIVE_STATES:
        st.warning("This run is still training; stop it on the Train page before deleting it.")
    with st.popover("Delete this run", icon=":material/delete:",
                    disabled=status.get("state") in runs.ACTIVE_STATES):
        st.markdown(f"Delete run `{run.id}`, its model and its results for good? "
                    "This cannot be undone.")
        st.button("Yes, delete it", type="primary", key="evaluate_delete",
                  on_click=_delete, args=(run,))
