"""What every browser shows of the runs, read from disk once for the whole server.

Thirty browsers watching one run each poll every second. If each one re-read the run's
files, recomputed the curves and serialised the charts, the server spent a core on it and
the run trained at 0.6× its speed. Here each run is read once per `FRESH_S` for everyone:
the `Snapshot` (status, records, progress, control, the charts' data already in Arrow)
is shared read-only by all sessions (`st.cache_resource`), and so is the list of runs that
pages watch for changes (`fingerprint`). A browser's poll is then a cache look-up and the
elements it draws.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from app_pages import charts
from cnn import curves, progress, runs
from cnn.config import HyperParams
from cnn.errors import CnnError
from cnn.store import JsonLinesReader

# How old a shared read may be. The pages poll every second: a change on disk shows within
# about FRESH_S + 1 s.
FRESH_S = 0.9
METRICS = ("loss", "accuracy")
# Above this many browsers watching one run (a crowd), they redraw its curves every 1.5 s,
# not 1 s; a crowd has left when at most half as many remain.
MANY_WATCHERS = 10
WATCHING_S = 5.0  # a browser that has not looked for this long no longer counts


@st.cache_resource(max_entries=64, show_spinner=False)
def _metrics_reader(path: str) -> tuple[JsonLinesReader, threading.Lock]:
    return JsonLinesReader(path), threading.Lock()


def records(run: runs.Run) -> list[dict]:
    """The run's metrics records, reading only the bytes added since the last look (one
    reader per run for the whole server)."""
    reader, lock = _metrics_reader(str(run.metrics_path))
    with lock:
        return runs.clean_records(reader.read())


@dataclass(frozen=True)
class Snapshot:
    """One run as every browser shows it now. Shared between sessions: read only."""

    run: runs.Run
    status: dict[str, Any]
    params: HyperParams | None = None
    problem: str | None = None  # why its settings cannot be read
    records: list[dict] = field(default_factory=list)
    progress: tuple[float, str] | None = None  # detailed, for the Train page
    short_progress: tuple[float, str] | None = None  # "Epoch 2 of 10 · batch 120 of 704"
    waiting: tuple[str, int] | None = None  # for a queued run (runs.Run.waiting)
    control: dict[str, Any] = field(default_factory=dict)
    learning_rate_now: float | None = None
    has_epoch: bool = False  # an epoch has ended (validation points exist)
    has_markers: bool = False  # the learning rate was changed live
    curves: dict[str, bytes] = field(default_factory=dict)  # metric -> Arrow IPC
    markers: bytes | None = None  # learning-rate changes, Arrow IPC

    @property
    def state(self) -> str | None:
        return self.status.get("state")

    def chart(self, metric: str, big: bool, height: int) -> dict:
        """The Vega-Lite spec of one live curve (charts.live_metric), data included."""
        return charts.live_metric(self.curves[metric], metric, self.params.epochs,
                                  self.markers, big=big, height=height)


def snapshot(run_id: str) -> Snapshot:
    """The run `run_id` as it is on disk now: its state as written (a new status file is
    seen at once), its progress and curves at most FRESH_S old. Raises CnnError when there
    is no such run."""
    root = runs.runs_dir()
    return _snapshot(run_id, str(root), _status_version(root / run_id))


def fingerprint(finished_only: bool = False) -> tuple:
    """runs.fingerprint, looked at once per FRESH_S / 2 for all browsers."""
    return _fingerprint(str(runs.runs_dir()), finished_only)


def _status_version(folder) -> tuple | None:
    try:
        stat = (folder / "status.json").stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


@st.cache_resource(ttl=FRESH_S, max_entries=256, show_spinner=False)
def _snapshot(run_id: str, root: str, status_version: tuple | None) -> Snapshot:
    run = runs.get_run(run_id, root)
    status = run.status()
    try:
        params = run.config
    except CnnError as error:
        return Snapshot(run, status, problem=str(error))
    found = records(run)
    state = status.get("state")
    active = state in runs.ACTIVE_STATES
    markers = curves.learning_rate_changes(found)
    return Snapshot(
        run, status, params, records=found,
        progress=progress.progress(found, params.epochs) if active else None,
        short_progress=progress.progress(found, params.epochs, detailed=False)
        if active else None,
        waiting=run.waiting() if state == runs.QUEUED else None,
        control=run.control() if active else {},
        learning_rate_now=next((r["learning_rate"] for r in reversed(found)
                                if r.get("learning_rate") is not None), None),
        has_epoch=any(r.get("kind") == "epoch" for r in found),
        has_markers=not markers.empty,
        curves={metric: charts.arrow_bytes(curves.training_curves(found, metric,
                                                                  params.batch_size))
                for metric in METRICS} if found else {},
        markers=charts.arrow_bytes(markers) if not markers.empty else None,
    )


@st.cache_resource(ttl=FRESH_S / 2, max_entries=16, show_spinner=False)
def _fingerprint(root: str, finished_only: bool) -> tuple:
    return runs.fingerprint(root, finished_only=finished_only)


@st.cache_resource(show_spinner=False)
def _watching() -> tuple[dict[str, dict[str, float]], threading.Lock]:
    return {}, threading.Lock()


def watching(run_id: str, browser: str) -> None:
    """Note that `browser` (common.browser_id) looks at the run `run_id` now."""
    seen, lock = _watching()
    with lock:
        seen.setdefault(run_id, {})[browser] = time.monotonic()


def watchers(run_id: str, within: float = WATCHING_S) -> int:
    """How many browsers looked at the run `run_id` in the last `within` seconds (those
    that looked longer ago are forgotten)."""
    seen, lock = _watching()
    now = time.monotonic()
    with lock:
        for run in list(seen):
            fresh = {b: t for b, t in seen[run].items() if now - t < within}
            if fresh:
                seen[run] = fresh
            else:
                del seen[run]
        return len(seen.get(run_id, ()))


def is_crowd(run_id: str) -> bool:
    """Whether a crowd watches the run `run_id` (more than MANY_WATCHERS browsers)."""
    return watchers(run_id) > MANY_WATCHERS


def crowd_changed(run_id: str, crowd: bool) -> bool:
    """Whether a page drawn for a crowd (or not) should now be drawn the other way; with a
    margin, so that a number of watchers near the limit does not flip it back and forth."""
    count = watchers(run_id)
    return count <= MANY_WATCHERS // 2 if crowd else count > MANY_WATCHERS
