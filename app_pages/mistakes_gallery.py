"""Evaluate's mistakes gallery: the test images a network got wrong, most confident first,
each with "why did it say …?" (the Inside page)."""

import numpy as np
import streamlit as st

from app_pages import common, inside_link
from cnn import datasets, evaluation, runs
from cnn.errors import CnnError


def show(run: runs.Run, report: dict, info: datasets.DatasetInfo | None) -> None:
    class_names = list(report["class_names"])
    if info is None or not datasets.is_available(info.name):
        title = common.md(info.title) if info else "its dataset"
        st.info(f"The test images of {title} are no longer on this computer, so the "
                "mistakes cannot be shown. Everything else about this run still works.")
        st.page_link(common.DATA, label="Get the images again on the Data page", icon="🖼️")
        return
    x_test = common.load_dataset(info.name).x_test
    try:
        stored = evaluation.load_predictions(run, len(x_test))
    except CnnError as error:
        st.info(common.md(error))
        return
    y_true, y_pred, confidence = stored["y_true"], stored["y_pred"], stored["confidence"]
    if y_true.max(initial=0) >= len(class_names) or y_pred.max(initial=0) >= len(class_names):
        st.warning("This run's predictions do not match its classes, so its mistakes cannot "
                   "be shown.")
        return
    order_col, class_col, limit_col = st.columns(3)
    most_confident = order_col.toggle(
        "Most confident mistakes first", value=True, key="evaluate_confident_first",
        help="On: the mistakes the network was surest about. Off: in test-set order.")
    true_class = class_col.selectbox(
        "True class", [None, *range(len(class_names))], key="evaluate_true_class",
        format_func=lambda c: "All classes" if c is None else class_names[c])
    limit = limit_col.select_slider("Show at most", [12, 24, 48, 96], value=24,
                                    key="evaluate_gallery_size")
    subset = np.arange(len(y_true)) if true_class is None else np.flatnonzero(
        y_true == true_class)
    shown = subset[evaluation.mistakes(y_true[subset], y_pred[subset], confidence[subset],
                                       limit, most_confident)]
    total = int((y_true[subset] != y_pred[subset]).sum())
    where = "" if true_class is None else f" of class {common.md(class_names[true_class])}"
    if total == 0:
        st.success(f"No misclassified test images{where}.", icon=":material/celebration:")
        return
    st.markdown(f"Showing **{len(shown)}** of **{total}** misclassified test "
                f"images{where}: **true class** → predicted (confidence).")
    with st.container(horizontal=True, gap="small", key="evaluate_gallery"):
        for i in shown:
            with st.container(width=150, border=True, gap="small"):
                st.image(common.upscale(x_test[i], 128), width=128, output_format="PNG")
                st.markdown(f"**{common.md(class_names[y_true[i]])}** → "
                            f":red[{common.md(class_names[y_pred[i]])}] "
                            f"({confidence[i]:.0%})")
                inside_link.why_button(
                    f"Why did it say {common.md(class_names[y_pred[i]])}?",
                    f"evaluate_why_{i}", run.id, test_index=int(i), title=f"Test image #{i}",
                    type="tertiary", help="Open this image inside the network: where it "
                    "looked, and what each layer made of it.")
