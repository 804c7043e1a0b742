"""Leaderboard: the class's finished runs of one dataset, best test accuracy first, and what
each setting did to it."""

import pandas as pd
import streamlit as st

from app_pages import charts, common, visitor
from cnn import datasets, leaderboard, progress, runs

DATASET = "leaderboard_dataset"
KNOB = "leaderboard_knob"

if not visitor.flag("presenter"):
    st.title("🏆 Leaderboard")
    st.caption("Every finished run of a dataset, best test accuracy first: who trained it, "
               "what they changed from their preset, and how long it took.")
common.watch_runs(bool(runs.active_runs()), finished_only=True)

known = datasets.registry()
trained = {}
for name in known:
    found = leaderboard.entries(name)
    if found:
        trained[name] = found
common.require(bool(trained), "No run has finished yet: the leaderboard fills as the class "
               "trains.", common.TRAIN, "Go to Train")

if st.session_state.get(DATASET) not in trained:
    wanted = st.session_state.get(common.DATASET)
    st.session_state[DATASET] = wanted if wanted in trained else next(iter(trained))
name = st.selectbox("Dataset", list(trained), key=DATASET,
                    format_func=lambda n: f"{known[n].title} ({len(trained[n])} run"
                    + ("s)" if len(trained[n]) != 1 else ")"))
entries = trained[name]

table = pd.DataFrame([{
    "Rank": rank, "Run": entry.name, "Who": entry.owner,
    "Test accuracy": entry.test_accuracy * 100, "Preset": entry.preset,
    "Changed": entry.changes or "nothing",
    "Training time": progress.duration(entry.seconds) if entry.seconds else "?",
} for rank, entry in enumerate(entries, start=1)])
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "Test accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=100.0,
                                                     format="%.1f%%"),
    "Changed": st.column_config.TextColumn(help="Settings that differ from the preset."),
})

st.subheader("What did each setting do?")
knob = st.segmented_control("Setting", list(leaderboard.KNOBS), key=KNOB, required=True,
                            default="learning_rate",
                            format_func=lambda k: leaderboard.KNOBS[k][0])
label, log_scale = leaderboard.KNOBS[knob]
points = pd.DataFrame([{"value": e.knobs[knob], "test_accuracy": e.test_accuracy,
                        "name": e.name, "owner": e.owner}
                       for e in entries if knob in e.knobs])
if len(points) < 2:
    st.caption("Two or more runs are needed for a chart.")
else:
    st.altair_chart(charts.accuracy_against(points, label, log_scale,
                                            big=visitor.flag("presenter")), width="stretch")
    st.caption("Each dot is one run. A trend across many runs says more than one good run: "
               "other settings changed too.")
