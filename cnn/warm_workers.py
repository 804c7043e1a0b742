"""Warm workers: a training process started ahead of time — TensorFlow imported, Keras
warmed up, the last dataset loaded — and handed the next run, so that its first point is
on the chart within a second of Start instead of four to seven.

A spare registers itself in `<runs>/.spares/` (`NAME.starting`, then `NAME.ready`). Whoever
starts a run claims a ready spare by renaming its `NAME.ready` to `NAME.taken` (a rename
succeeds once, so two claims never get the same spare), then writes `NAME.job` with the
run's folder; the spare trains that one run and exits, as any worker does (so its memory
goes back to the system). One spare is kept at a time; it leaves after IDLE_LIMIT_S unused.
$CNN_WARM_WORKER=0 turns this off (the test suite does, but for the tests of it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from cnn.processes import ProcessId, spawn_detached
from cnn.store import atomic_write_bytes, atomic_write_json, read_json

ENV = "CNN_WARM_WORKER"
FOLDER = ".spares"
IDLE_LIMIT_S = 20 * 60  # a warm process holds ~0.5 GB: give it back when the class is idle
CLAIM_WAIT_S = 10.0  # a claimed spare waits this long for its job, then leaves


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def _folder(root: Path) -> Path:
    return Path(root) / FOLDER


def _data_dir(env: dict[str, str] | None) -> str:
    return (env if env is not None else os.environ).get("CNN_DATA_DIR", "")


def _alive_entries(root: Path, suffix: str) -> list[tuple[Path, dict]]:
    found = []
    try:
        paths = sorted(_folder(root).glob(f"*{suffix}"))
    except OSError:
        return []
    for path in paths:
        entry = read_json(path)
        worker = ProcessId.from_dict(entry.get("worker")) if isinstance(entry, dict) else None
        if worker is not None and worker.is_running():
            found.append((path, entry))
        else:
            path.unlink(missing_ok=True)  # a spare that died: its entry goes
    return found


def ensure(root: Path, env: dict[str, str] | None = None,
           owner: ProcessId | None = None) -> None:
    """Start a spare for `root` unless one is warming up or ready (or spares are off). It
    lives as long as `owner` (by default this process: the web server) does."""
    if not enabled():
        return
    root = Path(root)
    if _alive_entries(root, ".starting") or _alive_entries(root, ".ready"):
        return
    owner = owner or ProcessId.current()
    try:
        _folder(root).mkdir(parents=True, exist_ok=True)
        log = _folder(root) / "spare.log"
        worker = spawn_detached("cnn.worker", ["spare", str(root), str(owner.pid),
                                               repr(owner.started)], log, env)
        atomic_write_json(_folder(root) / f"{worker.pid}.starting",
                          {"worker": worker.to_dict(), "data_dir": _data_dir(env)})
    except OSError:
        return  # a full or read-only disk: runs start the ordinary way


def claim(root: Path, job_path: Path, env: dict[str, str] | None = None) -> ProcessId | None:
    """Hand the run at `job_path` to a ready spare; its process, or None if there is none
    (or none that reads the same data folder)."""
    if not enabled():
        return None
    for path, entry in _alive_entries(Path(root), ".ready"):
        if entry.get("data_dir", "") != _data_dir(env):
            continue
        try:
            # A rename succeeds once: of two claims at the same moment, one gets it.
            os.rename(path, path.with_suffix(".taken"))
        except OSError:
            continue
        try:
            atomic_write_bytes(path.with_suffix(".job"), str(job_path).encode())
        except OSError:
            return None
        return ProcessId.from_dict(entry["worker"])
    return None


def serve(root: Path, owner: ProcessId) -> None:
    """The spare's side: warm up, say "ready", wait for a run (or leave when idle or when
    its owner, the server, has gone), train it. Runs in `python -m cnn.worker spare ROOT
    OWNER_PID OWNER_START`."""
    root = Path(root)
    me = ProcessId.current()
    name = _folder(root) / str(me.pid)
    record = {"worker": me.to_dict(), "data_dir": _data_dir(None)}
    _warm_up(root)
    atomic_write_json(name.with_suffix(".ready"), record)
    name.with_suffix(".starting").unlink(missing_ok=True)
    idle_until = time.monotonic() + IDLE_LIMIT_S
    next_owner_check = time.monotonic() + 1.0
    while True:
        job = name.with_suffix(".job")
        if job.exists():
            break
        if name.with_suffix(".taken").exists():
            claimed_at = time.monotonic()
            while not job.exists() and time.monotonic() - claimed_at < CLAIM_WAIT_S:
                time.sleep(0.02)
            break
        if time.monotonic() > idle_until or not name.with_suffix(".ready").exists() or \
                (time.monotonic() > next_owner_check and not owner.is_running()):
            _leave(name)
            return
        if time.monotonic() > next_owner_check:
            next_owner_check = time.monotonic() + 1.0
        time.sleep(0.05)
    try:
        run_path = Path(job.read_text())
    except OSError:
        _leave(name)
        return
    _leave(name)
    from cnn import runs, worker

    ensure(root, owner=owner)  # the next spare warms up while this one trains
    worker.train(runs.Run(run_path))


def _leave(name: Path) -> None:
    for suffix in (".starting", ".ready", ".taken", ".job"):
        name.with_suffix(suffix).unlink(missing_ok=True)


def _warm_up(root: Path) -> None:
    """Import and exercise what a run needs, and load the dataset of the newest run."""
    from cnn import datasets, runtime

    runtime.start_tensorflow()
    import numpy as np

    from cnn import models, training  # noqa: F401  (imports Keras, callbacks, checkpoints)
    from cnn.config import ConvBlock, HyperParams

    # One tiny fit traces Keras's training machinery once; later models trace faster.
    params = HyperParams(conv_blocks=[ConvBlock(2, 3, False)], dense_units=[],
                         precision="float32")
    model = models.compile_model(models.make_model(params, (8, 8, 1), 2), params)
    model.fit(np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4, np.int32), epochs=1, verbose=0)
    from cnn import runs

    newest = next((r for r in runs.list_runs(root)), None)
    name = "digits"
    try:
        name = newest.config.dataset if newest is not None else name
    except Exception:  # a damaged run: warm the offline dataset instead
        pass
    try:
        datasets.load(name, download_missing=False, keep=True)
    except Exception:  # noqa: BLE001 - missing or damaged: the run will say so itself
        pass
    sys.stdout.flush()


def stop_all(root: Path) -> None:
    """End the spares of `root` that wait for a run (a test server's teardown)."""
    for suffix in (".starting", ".ready"):
        for path, entry in _alive_entries(Path(root), suffix):
            ProcessId.from_dict(entry["worker"]).kill()
            path.unlink(missing_ok=True)
