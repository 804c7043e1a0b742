"""Train: set the hyperparameters, see the network they make, start a run, watch it learn.

The form (train_form) builds one `HyperParams`; `validate` decides whether Start is allowed.
Training runs in its own process (`runs.create_run`); this page only reads the run's files
(run_view), so a refresh, another page or another browser shows the same live run. The
form's settings live in the link (a lesson link), and the page follows runs started
anywhere else.
"""

from __future__ import annotations

import streamlit as st

from app_pages import (
    classroom_ui,
    common,
    form_state,
    live_runs,
    planned_network,
    run_view,
    train_form,
    visitor,
)
from cnn import classroom, datasets, runs, warm_workers
from cnn.errors import CnnError

RUN = "train_run"
START = "train_start"
TAB = "train_tab"
PICKED = "train_picked"  # the run this browser chose (else it follows the newest)
SETTINGS_TAB = ":material/tune: Settings"
TRAINING_TAB = ":material/monitoring: Training"


def _pick_run() -> None:
    st.session_state[PICKED] = st.session_state[common.SELECTED_RUN] = st.session_state[RUN]


def start(params, who: classroom.Person, total: int) -> None:
    """Start a run for `who`, within the classroom's limits."""
    try:
        mine = [r for r in runs.active_runs() if r.raw_status().get("owner_id") == who.id]
        classroom.check_start(who, visitor.caps(), params.epochs, total, len(mine))
        info = datasets.get_info(params.dataset)
        preset_name = form_state.preset_name()
        number = 1 + sum(1 for r in runs.list_runs()
                         if r.raw_status().get("owner_id") == who.id)
        new_run = runs.create_run(params, extra_status={
            **classroom.owner_fields(who), "preset": preset_name,
            "name": classroom.run_name(who, info.title, preset_name, number)})
    except CnnError as error:
        common.show_error(error)
    else:
        st.session_state[PICKED] = st.session_state[common.SELECTED_RUN] = new_run.id
        st.session_state[TAB] = TRAINING_TAB  # show it learn


def shown_run(all_runs: list[runs.Run], active: list[runs.Run]) -> str:
    """Which run the Training tab shows: the one this browser picked or started; with
    "follow" (or before any choice), the newest that trains, else the newest."""
    ids = [run.id for run in all_runs]
    picked = st.session_state.get(PICKED)
    if picked in ids and not (visitor.flag("follow") and active):
        return picked
    return active[-1].id if active else ids[0]


def training_tab(big: bool) -> None:
    """The run this browser shows (as of now: a run just started included); the page
    watches for runs changing anywhere (a live run's view does it itself)."""
    all_runs, active = runs.list_runs(), runs.active_runs()
    selected = shown_run(all_runs, active) if all_runs else None
    common.watch_runs(bool(active), poll=selected not in {run.id for run in active})
    if selected is None:
        st.info("Nothing has been trained yet. Choose the settings, then press "
                "**Start training**.", icon="👆")
        return
    st.session_state[RUN] = selected
    labels = {run.id: common.run_label(run) for run in all_runs}
    if not big:  # the presenter view shows the newest run: no choice to take room
        st.selectbox("Run", list(labels), key=RUN, on_change=_pick_run,
                     format_func=labels.__getitem__, label_visibility="collapsed")
    try:
        snap = live_runs.snapshot(selected)  # it may have been deleted a moment ago
    except CnnError as error:
        common.show_error(error)
        return
    if snap.state in runs.ACTIVE_STATES:
        run_view.live(snap, big)
    else:
        run_view.show(snap, big)


big = visitor.flag("presenter")
hidden = visitor.hidden()
who = visitor.person()
if not big:
    st.title("🏋️ Train")
    st.caption("Steps 3 to 5 of the workflow: build the network, compile it, train it.")

names = [name for name in datasets.registry() if datasets.is_available(name)]
common.require(bool(names), "No dataset is on this computer yet.", common.DATA,
               "Get one on the Data page", icon="🖼️")
info, link_problems = form_state.restore(names)
for problem in link_problems:
    common.show_error(problem)
described = planned_network.describe(info)
active = runs.active_runs()
warm_workers.ensure(runs.runs_dir())  # so that the next Start shows its first point at once

if big:
    # The presenter view: the run that trains (or the newest), its curves first; the form
    # and the Start bar stay in the ordinary view.
    training_tab(big)
    st.button("Leave the presenter view", key="train_leave_presenter", type="tertiary",
              icon=":material/close_fullscreen:",
              on_click=lambda: visitor.set_view("presenter", None))
    st.stop()

# The Start bar stays above the tabs, so it is always in view.
if "start" not in hidden:
    if who is None:
        classroom_ui.join_box()
    else:
        start_col, about_col = st.columns([1, 2], vertical_alignment="center")
        clicked = start_col.button("Start training", key=START, type="primary",
                                   width="stretch", icon=":material/play_arrow:",
                                   disabled=described.problem is not None)
        if described.problem is not None:
            about_col.markdown(":red[**Fix the settings first**] — see the message in "
                               "Settings.")
        else:
            epochs = described.params.epochs
            about_col.markdown(f"**{common.md(info.title)}** · {described.total:,} "
                               f"parameters · {epochs} epoch{'s' if epochs > 1 else ''}"
                               + (" · a new run starts when the one training now ends."
                                  if active else ""))
        if clicked and described.params is not None:
            start(described.params, who, described.total)
if who is not None and who.in_charge:
    with st.container(horizontal=True):
        classroom_ui.presenter_controls()
        if who.role == classroom.TEACHER:
            classroom_ui.teacher_panel()

# Open on Training while something trains, and always in the presenter view. (Not through
# `default`: a changed default would reset the tabs when the run ends.)
st.session_state.setdefault(TAB, TRAINING_TAB if active or big else SETTINGS_TAB)
if "settings" in hidden:
    training_tab(big)
else:
    tabs = [TRAINING_TAB, SETTINGS_TAB] if big else [SETTINGS_TAB, TRAINING_TAB]
    first, second = st.tabs(tabs, key=TAB, on_change="rerun")
    settings_tab, run_tab = (second, first) if big else (first, second)
    with settings_tab:
        train_form.settings(info, names, described)
    with run_tab:
        training_tab(big)
form_state.write_link(described.requested)
