"""One run as the Train page shows it, read from its files: state, progress, controls
(Stop, learning rate), the live curves and the results. The page redraws it every second
while the run is active; another browser sees the same."""

from __future__ import annotations

import threading

import streamlit as st

from app_pages import charts, common, inside_live, visitor
from cnn import classroom, curves, datasets, presets, progress, runs
from cnn.errors import CnnError
from cnn.store import JsonLinesReader

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


@st.cache_resource(max_entries=32)
def _metrics_reader(path: str) -> tuple[JsonLinesReader, threading.Lock]:
    return JsonLinesReader(path), threading.Lock()


def records(run: runs.Run) -> list[dict]:
    """The run's metrics records, reading only the bytes added since the last look (one
    reader per run for the whole server)."""
    reader, lock = _metrics_reader(str(run.metrics_path))
    with lock:
        return runs.clean_records(reader.read())


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


def _controls(run: runs.Run, params, status: dict, records_: list[dict],
              fraction: float | None) -> None:
    """Stop / Cancel, Pause / Resume / Step and the live learning-rate buttons — for the
    run's owner and the teacher. The row keeps its place while a run stops (disabled
    buttons), so the charts below do not jump."""
    state, hidden = status.get("state"), visitor.hidden()
    if not classroom.may_control(visitor.person() or GUEST, status):
        st.caption(f"Only {common.md(status.get('owner') or 'its owner')} or the teacher "
                   "can stop or change this run; everyone can watch it.")
        return
    stopping = state == runs.STOPPING or bool(run.control().get("stop"))
    paused = state == runs.PAUSED or bool(run.control().get("paused"))
    # Changing the learning rate, pausing or stepping make sense only while batches are
    # still to come.
    live = state in (runs.RUNNING, runs.PAUSED) and not stopping and \
        fraction is not None and fraction < 1
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
            peak = run.control().get("learning_rate", params.learning_rate)
            st.button("Learning rate ÷ 2", key="train_lr_down", on_click=_act,
                      args=(run, "set_learning_rate", peak / 2), disabled=not live,
                      help="From the next batch on.")
            st.button("Learning rate × 2", key="train_lr_up", on_click=_act,
                      args=(run, "set_learning_rate", min(peak * 2, 10.0)),
                      disabled=not live or peak * 2 > 10, help="From the next batch on.")
            now = next((r["learning_rate"] for r in reversed(records_)
                        if r.get("learning_rate") is not None), None)
            if now is not None:
                st.caption(f"Learning rate now: {now:.2g}")
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


def _charts(params, records_: list[dict], big: bool) -> None:
    markers = curves.learning_rate_changes(records_)
    for col, metric in zip(st.columns(2, gap="large"), ("loss", "accuracy")):
        data = curves.training_curves(records_, metric, params.batch_size)
        col.vega_lite_chart(spec=charts.live_metric(data, metric, params.epochs, markers,
                                                    big=big, height=300 if big else 340),
                            width="stretch")
    st.caption("Thin line: training, over the latest batches (smoothed). Dots: averages over "
               "each epoch — validation uses images held back from training"
               + (", and its first dot comes when the first epoch ends." if not any(
                   r.get("kind") == "epoch" for r in records_) else ".")
               + (" Dashed lines: the learning rate was changed." if not markers.empty
                  else ""))


def _class_names(params) -> list[str] | None:
    try:
        return list(datasets.get_info(params.dataset).class_names)
    except CnnError:
        return None


def show(run: runs.Run, status: dict, big: bool = False) -> None:
    """Everything about one run, from its files."""
    try:
        params = run.config
    except CnnError as error:
        common.show_error(error)
        return
    state = status.get("state")
    records_ = records(run)
    message = status.get("message") or ""
    waiting = run.waiting() if state == runs.QUEUED else None

    with st.container(horizontal=True, vertical_alignment="center"):
        if waiting and waiting[0] == "starting":
            st.badge("Starting", icon="🚀", color="blue")
            st.markdown("**Starting the training process…**")
        else:
            _badge(state)
            if state in runs.ACTIVE_STATES:
                st.markdown(f"**{common.md(message)}**")
        st.caption(common.md(presets.settings_line(params)))

    if waiting and waiting[0] == "queued":
        st.info(f"Queued — {_ordinal(waiting[1])} in line. It starts by itself when the run "
                "before it ends.", icon="⏳")
    done = progress.progress(records_, params.epochs) if state in runs.ACTIVE_STATES \
        else None
    if state in runs.ACTIVE_STATES and state != runs.QUEUED:
        st.progress(*(done or (0.0, message)))
    if big and records_:  # the presenter view: the curves first, above the fold
        _charts(params, records_, big)
    if state in runs.ACTIVE_STATES:
        if state == runs.STOPPING or run.control().get("stop"):
            st.warning("Stopping… the network keeps what it has learnt so far and is then "
                       "tested.", icon="✋")
        _controls(run, params, status, records_, done[0] if done else None)
    _results(run, status, state, message)
    if records_ and not big:
        _charts(params, records_, big)
    if run.inside_path.exists():
        with st.expander("Inside the network, as it learns", icon=":material/biotech:",
                         expanded=state in runs.ACTIVE_STATES and not big):
            inside_live.live_snapshot_panel(run.inside_path, _class_names(params))


@st.fragment(run_every=1.0)
def live(run_id: str, shown_state: str, big: bool = False) -> None:
    """The run, re-read from disk every second while it is queued or training."""
    try:
        run = runs.get_run(run_id)
        status = run.status()
    except CnnError as error:
        common.show_error(error)
        return
    if status.get("state") != shown_state:
        # A new state (started, stopping, ended): redraw the whole page once, so the run
        # list says it too; an ended run is then drawn without polling.
        st.rerun(scope="app")
    show(run, status, big)
