"""Open the Inside page on one image: the "why this answer?" buttons of Classify and
Evaluate. Light on purpose (no TensorFlow): Evaluate imports it too.

A test image travels in the URL (`?run=<id>&test=<index>`), so the view can be shared and
survives a refresh; an upload, drawing or photo travels in session state (the prepared
uint8 array, exactly what the network took), with the run id in the URL.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import common

ICON = ":material/frame_inspect:"


def open_inside(run_id: str, array: np.ndarray | None = None, title: str = "",
                test_index: int | None = None, class_name: str | None = None) -> None:
    """Switch to the Inside page on this image (never returns)."""
    st.session_state[common.INSIDE_IMAGE] = {
        "run": run_id,
        "array": None if array is None or test_index is not None else np.asarray(array, np.uint8),
        "title": title, "test": test_index, "fresh": True}
    params = {"run": run_id}
    if test_index is not None:
        params["test"] = str(int(test_index))
    if class_name is not None:
        params["class"] = class_name
    st.switch_page(common.INSIDE, query_params=params)


def why_button(label: str, key: str, run_id: str, *, array: np.ndarray | None = None,
               title: str = "", test_index: int | None = None, class_name: str | None = None,
               help: str | None = None, **button) -> None:
    """A button that opens the Inside page on this image. `label` is Markdown: escape
    class names with common.md first."""
    if st.button(label, key=key, icon=ICON, help=help or "See inside the network: what each "
                 "layer makes of this image, and where it looked to answer.", **button):
        open_inside(run_id, array, title, test_index, class_name)
