"""What the pages share: page paths, session-state keys, cached loaders, guards, escaping.

Pages are thin: everything they compute comes from `cnn/`. Session state holds only UI
choices; runs and their progress live on disk (cnn.runs), so every browser session and a
restarted server see the same.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from app_pages import live_runs
from cnn import datasets, runs
from cnn.errors import CnnError

# Pages, as paths relative to streamlit_app.py (st.page_link and st.switch_page take them).
HOME = "app_pages/home.py"
DATA = "app_pages/data.py"
TRAIN = "app_pages/train.py"
EVALUATE = "app_pages/evaluate.py"
CLASSIFY = "app_pages/classify.py"
INSIDE = "app_pages/inside.py"
LEADERBOARD = "app_pages/leaderboard.py"
MAKE_DATASET = "app_pages/make_dataset.py"

# Session-state keys: one place, one initialiser.
DATASET = "dataset"  # the dataset chosen on the Data page (a cnn.datasets name)
SELECTED_RUN = "selected_run"  # the run last started or picked (a run id), or None
# An image another page asks the Inside page to explain (see app_pages/inside_link.py).
INSIDE_IMAGE = "inside_image"
# A preset another page asks the Train page to open with (a cnn.presets name), e.g. after
# "Build and train" on Make a dataset; the Train page applies it once and removes it.
WANTED_PRESET = "wanted_preset"


def init_state() -> None:
    from app_pages import visitor

    st.session_state.setdefault(DATASET, datasets.DEFAULT_DATASET)
    st.session_state.setdefault(SELECTED_RUN, None)
    visitor.read_link()
    _ready_models(str(runs.runs_dir()))


@st.cache_resource(max_entries=4)
def _ready_models(root: str) -> list[str]:
    """Copy the ready-made models into the runs folder, once per server and folder."""
    from cnn import ready_models

    return ready_models.install(root)


def owner() -> str:
    """Who is using this browser, as a folder-safe name: what a student's drafts are filed
    under ("local" for the one-person app, "teacher", or a student's id)."""
    from app_pages import visitor

    who = visitor.person()
    return who.id if who else "guest"


# --- escaping ------------------------------------------------------------------------------
# What makes Markdown, HTML or a Streamlit directive out of text: images and links
# ![..](..) (no link without its brackets), emphasis, code, headings, tables, math,
# :colour[..] directives (no directive without the bracket), <autolinks> and raw HTML.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#!|<>~$])")
_HOME = str(Path.home()) if str(Path.home()) not in ("/", "") else ""
_LIST_MARKER = re.compile(r"^(\s*\d*)([-+.)])(?=\s)")  # "- x", "1. x" at the start


def md(text: object) -> str:
    """A user-given string (file, run, class or student name) made inert for st.markdown,
    st.error, captions and labels: every character that could start Markdown, HTML or a
    Streamlit directive is backslash-escaped (CommonMark shows the character itself), so
    "![x](http://evil/pwn.png)" is shown as text and never fetched. The server's home
    folder is shown as "~" (a message may name a file in it)."""
    text = str(text).replace(_HOME + os.sep, "~" + os.sep) if _HOME else str(text)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.splitlines()))
    return _LIST_MARKER.sub(r"\1\\\2", escaped)


# --- cached loaders ------------------------------------------------------------------------
@st.cache_resource(show_spinner="Loading the dataset…", max_entries=3)
def load_dataset(name: str) -> datasets.Dataset:
    """The dataset, read once per server (uint8 arrays are shared, never copied per rerun).

    Only call when `datasets.is_available(name)`: this never downloads.
    """
    return datasets.load(name, download_missing=False)


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model(path: str, modified_ns: int):
    from cnn.checkpoints import load_model

    return load_model(path)


def load_model(run: runs.Run):
    """The run's model, cached per file version (a newer checkpoint is loaded afresh)."""
    path = run.model_path
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        raise CnnError(f"Run {run.id} has no saved model any more.") from None
    return _load_model(str(path), modified)


# --- runs ------------------------------------------------------------------------------------
def finished_runs() -> list[runs.Run]:
    """Runs with a saved model and a whole test evaluation, newest first."""
    return [r for r in runs.list_runs() if r.has_model() and r.evaluation() is not None]


def run_label(run: runs.Run) -> str:
    """One line naming a run for select boxes: id, dataset, state, test accuracy. Plain
    text (select boxes do not render Markdown)."""
    status = run.status()
    try:
        dataset = datasets.get_info(run.config.dataset).title
    except CnnError:
        dataset = "?"
    accuracy = status.get("test_accuracy")
    tail = f" — test accuracy {accuracy:.1%}" if accuracy is not None else ""
    name = status.get("name")
    head = f"{name} · {run.id}" if isinstance(name, str) and name else f"{run.id} · {dataset}"
    return f"{head} · {status.get('state', '?')}{tail}"


def select_run(candidates: list[runs.Run], key: str, label: str = "Run",
               default: runs.Run | None = None) -> runs.Run:
    """A select box over `candidates` (newest first) that starts on the run chosen last
    anywhere in the app (SELECTED_RUN) if it is a candidate, else on `default` (or the
    newest), or on the run its link names (?run=…), or with "follow" on the newest. Only
    a choice the user makes here becomes SELECTED_RUN: merely opening the page must not
    move the Train page off the run that is training. The link then names the run shown."""
    from app_pages import visitor

    by_id = {run.id: run for run in candidates}
    linked = st.query_params.get("run")
    if linked and st.session_state.get(f"{key}_link") != linked:
        # A link naming a run (?run=…) opens on it, once; a stale one is said, not fatal.
        st.session_state[f"{key}_link"] = linked
        if linked in by_id:
            st.session_state[key] = linked
        else:
            st.info(f"The link's run “{md(linked)}” is not here (deleted, or not finished); "
                    "showing another.", icon=":material/link_off:")
    if visitor.flag("follow"):  # the presenter follows the newest run
        st.session_state[key] = candidates[0].id
    if st.session_state.get(key) not in by_id:
        chosen = st.session_state.get(SELECTED_RUN)
        st.session_state[key] = chosen if chosen in by_id else (default or candidates[0]).id
    labels = {run.id: run_label(run) for run in candidates}
    run_id = st.selectbox(label, list(by_id), key=key, format_func=labels.__getitem__,
                          on_change=_remember_run, args=(key,))
    st.query_params["run"] = st.session_state[f"{key}_link"] = run_id
    return by_id[run_id]


def _remember_run(key: str) -> None:
    st.session_state[SELECTED_RUN] = st.session_state[key]


# --- following the truth on disk ------------------------------------------------------
def watch_runs(active: bool, finished_only: bool = False, poll: bool = True) -> None:
    """Redraw the page when a run starts, changes state, ends or is deleted — from any
    browser or the command line — within a second or two while something trains, two or
    three when idle. Each look is a look-up in the fingerprint all browsers share
    (live_runs); nothing is redrawn when nothing changed, so an idle browser costs the
    server almost nothing. `finished_only`: only runs that end or disappear matter
    (results pages). `poll=False`: a live part of the page already calls `runs_changed`
    every second (one timer per browser, not two)."""
    st.session_state["runs_watch"] = finished_only
    st.session_state["runs_seen"] = live_runs.fingerprint(finished_only)
    if poll:
        (_watch_fast if active else _watch_slow)()


def browser_id() -> str:
    """A random name for this browser tab's session (for counting who watches)."""
    return st.session_state.setdefault("browser_id", uuid.uuid4().hex)


def runs_changed() -> bool:
    """Whether the runs changed since this page was drawn (see watch_runs)."""
    seen = live_runs.fingerprint(st.session_state.get("runs_watch", False))
    return seen != st.session_state.get("runs_seen")


def _look_again() -> None:
    if runs_changed():
        st.rerun(scope="app")


_watch_fast = st.fragment(run_every=1.0)(_look_again)
_watch_slow = st.fragment(run_every=2.0)(_look_again)


# --- page furniture ----------------------------------------------------------------------
# On a phone, a row of choices (presets, a dataset's classes, the leaderboard's knobs) wraps
# onto a second line instead of hiding its last choices past the screen's edge.
NARROW_SCREEN_CSS = """
<style>
@media (max-width: 640px) {
  [data-testid="stButtonGroup"] [role="radiogroup"] { flex-wrap: wrap; row-gap: 0.4rem; }
}
</style>
"""


def page_style() -> None:
    """What every page looks like beyond Streamlit's theme (the config's [theme])."""
    st.html(NARROW_SCREEN_CSS)


def require(condition: bool, message: str, page: str, label: str, icon: str = "👉") -> None:
    """Guard at the top of a page: explain what is missing, link to where to get it, stop."""
    if not condition:
        st.info(message)
        st.page_link(page, label=label, icon=icon)
        st.stop()


def upscale(image: Image.Image | np.ndarray, side: int = 128) -> Image.Image:
    """Enlarge a small image by a whole factor with nearest-neighbour, so 28 px images show
    crisp pixels instead of the browser's blur. Images already this big are left alone."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1
                                else image)
    factor = max(1, side // max(image.size))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor),
                        Image.Resampling.NEAREST)


def show_error(error: CnnError | str) -> None:
    """A user-facing problem as one readable line (never a traceback). Core messages can
    quote user input (a file or run name), so they are escaped too."""
    st.error(md(error), icon="⚠️")
