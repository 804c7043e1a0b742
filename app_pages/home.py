"""Home: the workflow as a short guided tour, what is training now, the latest result."""

import streamlit as st

from app_pages import common
from cnn import progress, runs
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


def _progress(run: runs.Run, status: dict) -> tuple[float, str]:
    """(fraction done, "Epoch 2 of 10 · batch 120 of 704"), else the status message."""
    message = status.get("message") or status.get("state", "")
    try:
        done = progress.progress(run.metrics(), run.config.epochs, detailed=False)
    except CnnError:
        return 0.0, message
    return done if done and status.get("state") == runs.RUNNING else (0.0, message)


def now_running(active: list[runs.Run]) -> None:
    """The runs queued or training now, whoever started them."""
    if not active:
        st.caption("Nothing is training right now.")
        return
    for run in active:
        status = run.status()
        fraction, text = _progress(run, status)
        with st.container(border=True):
            st.markdown(f"**{common.md(common.run_label(run))}**")
            if status.get("state") == runs.QUEUED:
                st.caption("⏳ Waiting for its turn.")
            else:
                st.progress(fraction, text=common.md(text))
    st.page_link(common.TRAIN, label="Watch it on the Train page", icon="🏋️")


# While something trains, its progress is redrawn every two seconds; when nothing does,
# the page only looks (cheaply) for a run starting anywhere.
@st.fragment(run_every=2.0)
def live_now_running() -> None:
    now_running(runs.active_runs())


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

active = runs.active_runs()
common.watch_runs(bool(active))
running, latest = st.columns(2, gap="large")
with running:
    st.subheader("Training now")
    if active:
        live_now_running()
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
