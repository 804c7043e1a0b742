"""Train: set the hyperparameters, see the network they make, start a run, watch it learn.

The form (train_form) builds one `HyperParams`; `validate` decides whether Start is allowed.
Training runs in its own process (`runs.create_run`); this page only reads the run's files
(run_view), so a refresh, another page or another browser shows the same live run.
"""

from __future__ import annotations

import streamlit as st

from app_pages import common, form_state, run_view, train_form
from cnn import datasets, runs
from cnn.errors import CnnError

RUN = "train_run"
START = "train_start"
TAB = "train_tab"
SETTINGS_TAB = ":material/tune: Settings"
TRAINING_TAB = ":material/monitoring: Training"


@st.fragment(run_every=2.0)
def wait_for_a_run() -> None:
    """No run yet: look again every two seconds (another browser may start one)."""
    if runs.list_runs():
        st.rerun(scope="app")
    st.info("Nothing has been trained yet. Choose the settings, then press "
            "**Start training**.", icon="👆")


def _pick_run() -> None:
    st.session_state[common.SELECTED_RUN] = st.session_state[RUN]


def start(params) -> None:
    try:
        new_run = runs.create_run(params)
    except CnnError as error:
        common.show_error(error)
    else:
        st.session_state[common.SELECTED_RUN] = new_run.id
        st.session_state[TAB] = TRAINING_TAB  # show it learn


def training_tab(active: list[runs.Run]) -> None:
    all_runs = runs.list_runs()
    if not all_runs:
        wait_for_a_run()
        return
    ids = [run.id for run in all_runs]
    selected = st.session_state.get(common.SELECTED_RUN)
    if selected not in ids:  # nothing chosen yet: follow what trains, else the newest
        selected = active[0].id if active else ids[0]
    st.session_state[RUN] = selected
    labels = {run.id: common.run_label(run) for run in all_runs}
    st.selectbox("Run", ids, key=RUN, on_change=_pick_run, format_func=labels.__getitem__,
                 label_visibility="collapsed")
    try:
        run = runs.get_run(selected)  # it may have been deleted a moment ago
        status = run.status()
    except CnnError as error:
        common.show_error(error)
        return
    if status.get("state") in runs.ACTIVE_STATES:
        run_view.live(run.id, status["state"])
    else:
        run_view.show(run, status)


st.title("🏋️ Train")
st.caption("Steps 3 to 5 of the workflow: build the network, compile it, train it.")

names = [name for name in datasets.registry() if datasets.is_available(name)]
common.require(bool(names), "No dataset is on this computer yet.", common.DATA,
               "Get one on the Data page", icon="🖼️")
info = form_state.restore(names)
described = form_state.describe(info)

# The Start bar stays above the tabs, so it is always in view.
active = runs.active_runs()
start_col, about_col = st.columns([1, 2], vertical_alignment="center")
clicked = start_col.button("Start training", key=START, type="primary", width="stretch",
                           icon=":material/play_arrow:", disabled=described.problem is not None)
if described.problem is not None:
    about_col.markdown(":red[**Fix the settings first**] — see the message in Settings.")
else:
    epochs = described.params.epochs
    about_col.markdown(f"**{common.md(info.title)}** · {described.total:,} parameters · "
                       f"{epochs} epoch{'s' if epochs > 1 else ''}"
                       + (" · a new run starts when the one training now ends."
                          if active else ""))
if clicked and described.params is not None:
    start(described.params)

# Open on Training while something trains. (Not through `default`: a changed default would
# reset the tabs when the run ends.)
st.session_state.setdefault(TAB, TRAINING_TAB if active else SETTINGS_TAB)
settings_tab, run_tab = st.tabs([SETTINGS_TAB, TRAINING_TAB], key=TAB, on_change="rerun")
with settings_tab:
    train_form.settings(info, names, described)
with run_tab:
    training_tab(active)
