"""One run as the Train page shows it, read from its files: state, progress, controls
(Stop, learning rate), the live curves and the results. While the run is active, only its
progress and curves are redrawn every second (from the snapshot all browsers share,
live_runs); a change of state redraws the page. Another browser sees the same."""

from __future__ import annotations

import streamlit as st

from app_pages import common, inside_live, live_runs, visitor
from app_pages.live_runs import Snapshot, snapshot
from cnn import classroom, datasets, presets, progress, runs
from cnn.errors import CnnError

STOP = "train_stop"
ACTION_ERROR = "train_action_error"

STATE_BADGES = {
    runs.QUEUED: ("Queued", "⏳", "gray"),
    runs.RUNNING: ("Training", "🏃", "blue"),
    runs.PAUSED: ("Paused", "⏸️", "orange"),
    runs.STOPPING: ("Stopping", "✋", "orange"),
    runs.FINISHED: ("Finished", "✅", "green"),
    runs.STOPPED: ("Stopped", "⏹️", "violet"),
    runs.FAILED: ("Failed", "❌", "red"),
    runs.INTERRUPTED: ("Interrupted", "⚠️", "red"),
    runs.DAMAGED: ("Damaged", "🩹", "red"),
}


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _badge(state: str) -> None:
    label, icon, colour = STATE_BADGES.get(state, (state, "❔", "gray"))
    st.badge(label, icon=icon, color=colour)


def _act(run: runs.Run, action: str, *args) -> None:
    """A button callback: ask the run for something, if this browser may; a refusal
    becomes a message."""
    try:
        classroom.check_control(visitor.person() or GUEST, run.status())
        getattr(run, action)(*args)
    except CnnError as error:
        st.session_state[ACTION_ERROR] = str(error)


GUEST = classroom.Person(classroom.STUDENT, "a guest", "")


def _controls(snap: Snapshot) -> None:
    """Stop / Cancel, Pause / Resume / Step and the live learning-rate buttons — for the
    run's owner and the teacher. Drawn with the page (not every second): each change of
    state (stopping, paused, ended) redraws the page. The row keeps its place while a run
    stops (disabled buttons), so the charts below do not jump."""
    run, status, state, hidden = snap.run, snap.status, snap.state, visitor.hidden()
    if not classroom.may_control(visitor.person() or GUEST, status):
        st.caption(f"Only {common.md(status.get('owner') or 'its owner')} or the teacher "
                   "can stop or change this run; everyone can watch it.")
        return
    stopping = state == runs.STOPPING or bool(snap.control.get("stop"))
    paused = state == runs.PAUSED or bool(snap.control.get("paused"))
    # Changing the learning rate, pausing or stepping make sense only while batches are
    # still to come.
    live = state in (runs.RUNNING, runs.PAUSED) and not stopping and \
        snap.progress is not None and snap.progress[0] < 1
    with st.container(horizontal=True, vertical_alignment="center", key="train_controls"):
        if "controls" not in hidden:
            st.button("Stop training" if state != runs.QUEUED else "Cancel", key=STOP,
                      icon=":material/stop_circle:", disabled=stopping, on_click=_act,
                      args=(run, "request_stop"), help="Ends training after the current "
                      "batch; the network learnt so far is kept and tested.")
            if state != runs.QUEUED:
                st.button("Resume" if paused else "Pause", key="train_pause",
                          icon=":material/play_arrow:" if paused else ":material/pause:",
                          on_click=_act, args=(run, "resume" if paused else "pause"),
                          disabled=not live, help="Hold training after the current batch, "
                          "to talk about the curves; it waits until you resume.")
                st.button("Step: a batch", key="train_step_batch", on_click=_act,
                          args=(run, "step", "batch"), disabled=not (live and paused),
                          help="While paused: train one more batch (group), then hold.")
                st.button("Step: to the epoch's end", key="train_step_epoch",
                          on_click=_act, args=(run, "step", "epoch"),
                          disabled=not (live and paused),
                          help="While paused: train to the end of this epoch, then hold.")
        if state != runs.QUEUED and "learning_rate" not in hidden:
            peak = snap.control.get("learning_rate", snap.params.learning_rate)
            st.button("Learning rate ÷ 2", key="train_lr_down", on_click=_act,
                      args=(run, "set_learning_rate", peak / 2), disabled=not live,
                      help="From the next batch on.")
            st.button("Learning rate × 2", key="train_lr_up", on_click=_act,
                      args=(run, "set_learning_rate", min(peak * 2, 10.0)),
                      disabled=not live or peak * 2 > 10, help="From the next batch on.")
    error = st.session_state.pop(ACTION_ERROR, None)
    if error:
        common.show_error(error)


def _results(run: runs.Run, status: dict, state: str, message: str) -> None:
    if state in (runs.FINISHED, runs.STOPPED) and status.get("test_accuracy") is not None:
        st.success(common.md(message), icon="🎉" if state == runs.FINISHED else "⏹️")
        cols = st.columns(4)
        cols[0].metric("Test accuracy", f"{status['test_accuracy']:.1%}", border=True,
                       help="Share of the test images, never seen in training, that it "
                       "classifies correctly.")
        if status.get("test_loss") is not None:
            cols[1].metric("Test loss", f"{status['test_loss']:.3f}", border=True,
                           help="Cross-entropy on the test images: lower is better.")
        epochs = status.get("epochs_trained", status.get("epochs_completed"))
        cols[2].metric("Epochs trained", progress.epochs_text(epochs), border=True,
                       help="Full epochs, plus the part of the one it was stopped in.")
        seconds = status.get("fit_seconds", status.get("train_seconds"))
        cols[3].metric("Training time", progress.duration(seconds or 0), border=True,
                       help="fit(): every epoch with its validation pass (not loading the "
                       "data or the final test).")
        facts = []
        if status.get("train_images"):
            facts.append(f"{status['train_images']:,} training images")
        if status.get("train_images_per_second"):
            facts.append(f"{status['train_images_per_second']:,.0f} images/s")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.page_link(common.EVALUATE, label="Next: see where it goes wrong on Evaluate",
                         icon="📊")
            if facts:
                st.caption(" · ".join(facts))
    elif state == runs.FAILED:
        st.error(common.md(message or "The run failed."), icon="❌")
        st.caption("The training process's own log is worker.log in the run's folder.")
    elif state in (runs.INTERRUPTED, runs.DAMAGED):
        st.warning(common.md(message or "The run was interrupted."), icon="⚠️")
    elif state in (runs.FINISHED, runs.STOPPED):
        st.info(common.md(message))


def _charts(snap: Snapshot, big: bool) -> None:
    for col, metric in zip(st.columns(2, gap="large"), ("loss", "accuracy")):
        col.vega_lite_chart(spec=snap.chart(metric, big, height=300 if big else 340),
                            width="stretch")
    st.caption("Thin line: training, over the latest batches (smoothed). Dots: averages over "
               "each epoch — validation uses images held back from training"
               + (", and its first dot comes when the first epoch ends."
                  if not snap.has_epoch else ".")
               + (" Dashed lines: the learning rate was changed." if snap.has_markers
                  else ""))


def _class_names(params) -> list[str] | None:
    try:
        return list(datasets.get_info(params.dataset).class_names)
    except CnnError:
        return None


def _phase(snap: Snapshot) -> tuple:
    """What the page (not only its live part) shows of a run: its state (queued, starting,
    training, paused…), and once it trains, the worker's message (training, testing…).
    Before the first batch the message (loading, downloading: 12.3 MB…) changes often and
    is shown live instead."""
    return (snap.state, snap.waiting[0] if snap.waiting else None,
            snap.status.get("message") if snap.progress else None)


def _header(snap: Snapshot) -> None:
    """The run's state, the worker's message and the settings, as of this drawing."""
    with st.container(horizontal=True, vertical_alignment="center"):
        if snap.waiting and snap.waiting[0] == "starting":
            st.badge("Starting", icon="🚀", color="blue")
            st.markdown("**Starting the training process…**")
        else:
            _badge(snap.state)
            if snap.state in runs.ACTIVE_STATES and snap.progress:
                st.markdown(f"**{common.md(snap.status.get('message') or '')}**")
        st.caption(common.md(presets.settings_line(snap.params)))


def _progress(snap: Snapshot) -> None:
    """Where the run is now: its place in the queue, or the progress bar (the epoch and
    batch, the speed, the time left, the learning rate; the worker's message before the
    first batch)."""
    if snap.state == runs.QUEUED:
        if snap.waiting and snap.waiting[0] == "queued":
            st.info(f"Queued — {_ordinal(snap.waiting[1])} in line. It starts by itself when "
                    "the run before it ends.", icon="⏳")
        return
    if snap.progress is None:
        st.progress(0.0, text=common.md(snap.status.get("message") or ""))
        return
    fraction, text = snap.progress
    if snap.learning_rate_now is not None:
        text += f" · learning rate {snap.learning_rate_now:.2g}"
    st.progress(fraction, text=text)


def _inside(snap: Snapshot, big: bool, crowd: bool = False) -> None:
    """The first filters and one image's maps, as of the newest epoch: while the run trains
    (its first snapshot comes when training begins), or as they ended."""
    active = snap.state in runs.ACTIVE_STATES
    if active or snap.run.inside_path.exists():
        with st.expander("Inside the network, as it learns", icon=":material/biotech:",
                         expanded=active and not big):
            panel = inside_live.live_snapshot_panel
            if active:
                panel = _live_inside_for_a_crowd if crowd else _live_inside
            panel(snap.run.inside_path, _class_names(snap.params))


# While the run trains, a look at its newest snapshot every 5 s, 10 s for a crowd (an epoch
# takes seconds to minutes; each look redraws a dozen pictures and captions, as many
# elements as the curves' every second).
_live_inside = st.fragment(run_every=5.0)(inside_live.live_snapshot_panel)
_live_inside_for_a_crowd = st.fragment(run_every=10.0)(inside_live.live_snapshot_panel)


def show(snap: Snapshot, big: bool = False) -> None:
    """A run that is not training (finished, stopped, failed, damaged), from its files."""
    if snap.problem is not None:
        common.show_error(snap.problem)
        return
    _header(snap)
    if big and snap.records:  # the presenter view: the curves first, above the fold
        _charts(snap, big)
    _results(snap.run, snap.status, snap.state, snap.status.get("message") or "")
    if snap.records and not big:
        _charts(snap, big)
    _inside(snap, big)


def live(snap: Snapshot, big: bool = False) -> None:
    """A run that is queued or training: the controls with the page, its progress and
    curves redrawn every second, until its state changes."""
    if snap.problem is not None:
        common.show_error(snap.problem)
        return
    _header(snap)
    if not big:
        _stopping_and_controls(snap)
    crowd = live_runs.is_crowd(snap.run.id)
    (_live_part_for_a_crowd if crowd else _live_part_every_second)(
        snap.run.id, _phase(snap), big, crowd)
    if big:  # the presenter view: the curves first, above the fold
        _stopping_and_controls(snap)
    _inside(snap, big, crowd)


def _stopping_and_controls(snap: Snapshot) -> None:
    if snap.state == runs.STOPPING or snap.control.get("stop"):
        st.warning("Stopping… the network keeps what it has learnt so far and is then "
                   "tested.", icon="✋")
    _controls(snap)


def _live_part(run_id: str, shown_phase: tuple, big: bool, crowd: bool) -> None:
    """The progress and the curves, redrawn every second (1.5 s for a crowd: thirty
    browsers at 1 s took a third of a core from the training), from the snapshot all
    browsers share. This is also the page's look for runs started, ended or deleted
    anywhere."""
    try:
        snap = snapshot(run_id)
    except CnnError as error:
        common.show_error(error)
        return
    live_runs.watching(run_id, common.browser_id())
    if _phase(snap) != shown_phase or common.runs_changed() or \
            live_runs.crowd_changed(run_id, crowd):
        # A new state (started, paused, stopping, ended), another run, or a crowd that
        # formed or left: redraw the whole page once, so the run list, the badge and the
        # controls say it too (and the timer suits the crowd).
        st.rerun(scope="app")
    _progress(snap)
    if snap.records:
        _charts(snap, big)


_live_part_every_second = st.fragment(run_every=1.0)(_live_part)
_live_part_for_a_crowd = st.fragment(run_every=1.5)(_live_part)
