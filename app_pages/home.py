"""Home: the workflow as a short guided tour, what is training now, the latest result."""

import streamlit as st

from app_pages import common, live_runs
from cnn import runs
from cnn.errors import CnnError

# (icon, step, one sentence, page, link label)
STEPS = [
    ("🖼️", "Data", "Pick a set of labelled pictures — digits, clothes or photos — and look "
     "at them first.", common.DATA, "Choose the data"),
    ("🎚️", "Preprocess", "Pixels go from 0–255 to 0–1. The network's first layer does it, so "
     "a saved network takes raw images anywhere.", common.TRAIN, "See the first layer"),
    ("🧱", "Model", "Stack conv blocks that find edges, then shapes, then objects; dense "
     "layers turn them into one score per class.", common.TRAIN, "Build the network"),
    ("⚙️", "Compile", "Choose how it learns: the optimizer, the learning rate and the loss "
     "it tries to make small.", common.TRAIN, "Set the optimizer"),
    ("🏋️", "Train", "Press Start and watch the loss fall and the accuracy rise, epoch after "
     "epoch.", common.TRAIN, "Start training"),
    ("📊", "Evaluate", "Test it on pictures it has never seen: its accuracy, and which "
     "classes it mixes up.", common.EVALUATE, "Check the results"),
]


def now_running(active: list[str]) -> None:
    """The runs queued or training now, whoever started them (by id, oldest first)."""
    if not active:
        st.caption("Nothing is training right now.")
        return
    for run_id in active:
        try:
            snap = live_runs.snapshot(run_id)
        except CnnError:  # deleted a moment ago
            continue
        message = snap.status.get("message") or snap.state or ""
        fraction, text = (snap.short_progress if snap.short_progress
                          and snap.state == runs.RUNNING else (0.0, message))
        with st.container(border=True):
            st.markdown(f"**{common.md(common.run_label(snap.run))}**")
            if snap.state == runs.QUEUED:
                st.caption("⏳ Waiting for its turn.")
            else:
                st.progress(fraction, text=common.md(text))
    st.page_link(common.TRAIN, label="Watch it on the Train page", icon="🏋️")


# While something trains, its progress is redrawn every 2 s from the snapshot all browsers
# share, and this is also the page's look for runs starting or ending anywhere (one timer
# per browser, not two); when nothing trains, the page only looks (cheaply) for a run
# starting.
@st.fragment(run_every=2.0)
def live_now_running(active: list[str]) -> None:
    if common.runs_changed():
        st.rerun(scope="app")
    now_running(active)


st.title("🧠 CNN Playground")
st.markdown("Teach a computer to recognise pictures, and watch it learn. A **convolutional "
            "neural network** (CNN) slides small filters over an image to find edges and "
            "shapes, and combines them into an answer. Six steps:")

numbered = list(enumerate(STEPS, start=1))
for row in (numbered[:3], numbered[3:]):
    for col, (number, (icon, step, sentence, page, label)) in zip(st.columns(3), row):
        with col.container(border=True, height="stretch"):
            st.markdown(f"#### {icon} {number} · {step}")
            st.markdown(sentence)
            st.page_link(page, label=label, icon=":material/arrow_forward:")
st.caption("Then try your network on your own pictures or drawings:")
st.page_link(common.CLASSIFY, label="Classify", icon="🔍")

active = [run.id for run in runs.active_runs()]
common.watch_runs(bool(active), poll=not active)
running, latest = st.columns(2, gap="large")
with running:
    st.subheader("Training now")
    if active:
        live_now_running(active)
    else:
        now_running(active)
with latest:
    st.subheader("Latest result")
    finished = common.finished_runs()
    if not finished:
        st.caption("No network has finished training yet.")
    else:
        run = finished[0]
        report = run.evaluation() or {}
        accuracy = report.get("test_accuracy")
        st.metric("Test accuracy", "?" if accuracy is None else f"{accuracy:.1%}", border=True,
                  help="Share of the test pictures (never seen in training) it got right.")
        st.caption(common.md(common.run_label(run)))
        st.page_link(common.EVALUATE, label="See where it goes wrong", icon="📊")
