"""Classroom figures: what thirty browsers cost the server, and what they see. Not a test.

    CNN_DATA_DIR=../shared/datasets python benchmarks/bench_classroom.py \
        [--clients 30] [--only appear,start,idle,watch] [--app-dir DIR] [--out FILE]

A real `python -m streamlit run streamlit_app.py` is started on a free port of 127.0.0.1
(its own runs folder in a temporary directory, CNN_OFFLINE=1, the caller's CNN_DATA_DIR;
as tests/live_app.py does), at normal priority, as a user would run it. The browsers are
light clients (benchmarks/light_client.py): each speaks Streamlit's websocket protocol as
the frontend does, including the timers that rerun `st.fragment(run_every=...)`, so the
server does a browser's work while thirty of them fit in one asyncio loop here. Runs are
started through the core (`cnn.runs.create_run`), as a click on Start does. Server CPU is
the server process's own CPU time (all its threads; not the training workers, which are
separate processes), over wall time, in % of one core.

Parts, in this order (each can be chosen with --only):

appear  Time until a run started elsewhere shows in an open page: one client on Train
        (first while the runs folder is still empty, then with runs on disk) and on
        Home; from just before `create_run` until the client receives an element naming
        the run id or a Queued/Starting/Training badge (at most --appear-timeout s).
        Each run is stopped once seen.
start   Start -> first live point: from just before `create_run` to the first record
        of the run's metrics.jsonl (and to its first batch record), for digits and
        Fashion-MNIST (when CNN_DATA_DIR has it), --start-repeats each, alternated;
        the fast preset as the Train page starts it; no browser open.
idle    A finished run is trained first (fast preset, Fashion-MNIST or digits; its
        images/s sizes the watch runs). Then for each page, once the server is quiet,
        --clients clients open it (0.1 s apart), load it and settle, and the server's
        CPU is measured over --window s; with 0 clients before and after, as the
        baseline; then --busy-pages again while a run trains that nobody watches. Per
        page: how many clients loaded it (within 300 s) and how fast, the server CPU one
        load cost; per client: deltas, bytes and fragment reruns per second, and the
        fragments its page polls.
watch   The same run (fast preset, float32, sized to last about --watch-seconds)
        trained while watched by 1 client on the Train page and by --clients clients,
        alternated 1, N, N, 1 (--watch-repeats pairs). The clients open the page just
        after the run is created, while it starts (how many had loaded when training
        began is recorded), as students do when told to. Per run: its training
        images/s (status.json train_images_per_second; the median of its epoch records
        too), N-watched / 1-watched as the ratio of medians; how often each client's
        charts got new content while it trained (intervals between chart changes, median
        and 90th percentile per client); whether every client showed the run finished
        (its Finished badge) within 30 s of the end; server CPU while it trained.

The machine has 2 cores that other people use too: figures are noisy. The load average
and the whole machine's CPU use are recorded with every window, the clients' own CPU
(this process) too, and speed figures are ratios measured side by side in one run.
Results go to bench-out/classroom.json (written after every part) and a table is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]
import live_app  # (tests/live_app.py: the server, as the browser tests serve it)
from light_client import LightClient

PAGES = {"home": "", "data": "data", "train": "train", "evaluate": "evaluate",
         "classify": "classify"}
PARTS = ("appear", "start", "idle", "watch")
# The Train page's state badge (st.badge: ":blue-badge[🏃 Training]").
ACTIVE_BADGE = re.compile(r"-badge\[\S+ (Queued|Starting|Training)\]")
ENDED_BADGE = re.compile(r"-badge\[\S+ (Finished|Stopped|Failed|Interrupted)\]")
FASHION = "fashion_mnist"


class ServerDied(RuntimeError):
    pass


# --- the server -------------------------------------------------------------------------
@dataclass
class Server:
    url: str
    runs_dir: Path
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check(self) -> None:
        if self.process.poll() is not None:
            raise ServerDied(f"the Streamlit server exited with {self.process.returncode}; "
                             f"the end of its log ({self.log_path}):\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system time of the server process, all its threads (not its children)."""
        self.check()
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error as error:
            raise ServerDied(f"the Streamlit server is gone: {error}") from None
        return times.user + times.system


@contextmanager
def serve(app_dir: Path, workdir: Path, startup_timeout: float = 120):
    """The app of `app_dir` served as tests/live_app.py serves it (its own runs folder,
    offline, an empty Keras home), with a warm worker as a user's server has one."""
    with live_app.serve(workdir, startup_timeout, warm=True, app_dir=app_dir) as app:
        yield Server(app.url, app.runs_dir, app.process, app.log_path)


# --- measuring ------------------------------------------------------------------------------
class CpuWindow:
    """Server CPU, this process's CPU (the clients), the whole machine's CPU and the load
    average over a stretch of wall time."""

    def __init__(self, server: Server):
        self.server = server
        self.t0 = time.monotonic()
        self.server0 = server.cpu_seconds()
        self.self0 = _own_cpu()
        self.machine0 = psutil.cpu_times()
        self.load0 = os.getloadavg()

    def stop(self) -> dict:
        wall = time.monotonic() - self.t0
        server = self.server.cpu_seconds() - self.server0
        machine = psutil.cpu_times()
        busy = sum(getattr(machine, f) - getattr(self.machine0, f)
                   for f in ("user", "nice", "system", "irq", "softirq", "steal")
                   if hasattr(machine, f))
        return {"seconds": round(wall, 1),
                "server_cpu_pct": round(100 * server / wall, 1),
                "clients_cpu_pct": round(100 * (_own_cpu() - self.self0) / wall, 1),
                "machine_cpu_pct": round(100 * busy / wall, 1),  # of all cores: max 200
                "load_average": [round(x, 2) for x in (self.load0[0], os.getloadavg()[0])]}


def _own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


async def pause(server: Server, seconds: float) -> None:
    """Sleep, checking every half second that the server still runs."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        server.check()
        await asyncio.sleep(min(0.5, left))


async def quiet(server: Server, below: float = 5.0, span: float = 2.0,
                timeout: float = 300) -> float:
    """Wait until the server uses under `below` % of a core over `span` s (the scripts of
    clients that left may still run); returns how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = server.cpu_seconds()
        await pause(server, span)
        if 100 * (server.cpu_seconds() - before) / span < below:
            break
    return round(time.monotonic() - start, 1)


async def connect_all(server: Server, page: str, n: int, stagger: float = 0.1,
                      load_timeout: float = 300) -> list[LightClient]:
    """`n` clients opening `page`, `stagger` s apart (each on its own, as browsers do),
    until each has loaded it or `load_timeout` s passed. A client that did not load stays
    in the list (see `loading`): how many load, and how fast, is a figure too."""
    clients = [LightClient(server.url, page, name=f"{page or 'home'}-{i}") for i in range(n)]

    async def open_one(i: int, client: LightClient) -> None:
        await asyncio.sleep(i * stagger)
        try:
            await client.connect()
        except Exception as error:  # noqa: BLE001  (counted as not loaded)
            client.error = f"could not connect: {type(error).__name__}: {error}"
            return
        await client.wait_loaded(load_timeout)

    await asyncio.gather(*(open_one(i, c) for i, c in enumerate(clients)))
    server.check()
    if not any(c.full_runs_finished for c in clients):
        await close_all(clients)
        raise RuntimeError(f"none of {n} clients loaded /{page}: "
                           + "; ".join(f"{c.name}: {c.error}" for c in clients[:3]))
    return clients


def loading(clients: list[LightClient]) -> dict:
    """How many clients loaded their page, and how long it took them (s, from connecting
    to the end of the page's first run)."""
    times = [c.full_runs_finished[0] - c.connected_at for c in clients
             if c.full_runs_finished and c.connected_at is not None]
    problems = [f"{c.name}: {c.error or 'not loaded'}" for c in clients
                if not c.full_runs_finished]
    return {"clients_loaded": len(times), "load_s_median": _median(times),
            "load_s_max": round(max(times), 2) if times else None,
            "not_loaded": problems[:3]}


async def close_all(clients: list[LightClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def _percentile(values, q: float):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * q
    low, high = math.floor(k), math.ceil(k)
    return round(values[low] + (values[high] - values[low]) * (k - low), 3)


async def end_run(run, timeout: float = 120) -> None:
    """Ask a run to stop (if it still runs) and wait until its worker has exited."""
    from cnn import runs
    from cnn.errors import CnnError

    with suppress(CnnError):  # it ended in between
        if run.state() in runs.ACTIVE_STATES:
            run.request_stop()
    deadline = time.monotonic() + timeout
    while run.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    if run.is_alive():
        run.force_stop()


def _first_record_time(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


# --- appear ----------------------------------------------------------------------------------
async def part_appear(server: Server, args) -> dict:
    from cnn import runs
    from cnn.presets import preset

    trials = []
    if not runs.list_runs(server.runs_dir):
        trials.append(("train", "no run on disk yet"))
    trials += [("home", "runs on disk")] * args.appear_repeats + [("train", "runs on disk")]
    results = []
    for page, situation in trials:
        client = LightClient(server.url, PAGES[page], name=f"appear-{page}")
        await client.connect()
        run = None
        try:
            if not await client.wait_loaded(120):
                raise RuntimeError(f"/{PAGES[page]} did not load: {client.error}")
            # Poll timers run from the page's load: start at a different phase each time.
            await pause(server, 3 + len(results) * 0.7 % 2)
            t0 = time.monotonic()
            run = runs.create_run(preset("fast", dataset="digits", epochs=200),
                                  root=server.runs_dir)
            pattern = re.compile(re.escape(run.id) + "|" + ACTIVE_BADGE.pattern)
            seen = await client.wait_for(
                lambda c=client, p=pattern, t=t0: c.first_text(p, t) is not None,
                args.appear_timeout)
            server.check()
            at = client.first_text(pattern, t0) if seen else None
            results.append({"page": page, "situation": situation,
                            "seconds": round(at - t0, 2) if at is not None else None,
                            "polling": client.polling})
            print(f"  appear on {page} ({situation}): "
                  + (f"{at - t0:.2f} s" if at is not None
                     else f"not within {args.appear_timeout:.0f} s"), file=sys.stderr)
        finally:
            await client.close()
            if run is not None:
                await end_run(run)
    summary = {}
    for page in ("home", "train"):
        for situation in ("no run on disk yet", "runs on disk"):
            found = [r["seconds"] for r in results
                     if r["page"] == page and r["situation"] == situation]
            if found:
                summary[f"{page}, {situation}"] = {
                    "median_s": _median(found), "seen": sum(s is not None for s in found),
                    "trials": len(found)}
    return {"timeout_s": args.appear_timeout, "trials": results, "summary": summary}


# --- start -------------------------------------------------------------------------------------
async def warm_spare(server: Server, timeout: float = 90) -> bool:
    """Ask for a warm worker, as the Train page does on every visit, and wait until it is
    ready (an app without warm workers has none: False)."""
    try:
        from cnn import warm_workers
    except ImportError:
        return False
    folder = server.runs_dir / warm_workers.FOLDER
    warm_workers.ensure(server.runs_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(folder.glob("*.ready")):
            return True
        await asyncio.sleep(0.1)
    return False


async def part_start(server: Server, args, datasets_here: list[str]) -> dict:
    from cnn import runs
    from cnn.presets import preset

    trials = []
    for repeat in range(args.start_repeats):
        for dataset in datasets_here if repeat % 2 == 0 else datasets_here[::-1]:
            server.check()
            warm = await warm_spare(server)  # as the open Train page keeps one
            t0 = time.monotonic()
            created_wall = time.time()
            run = runs.create_run(preset("fast", dataset=dataset, epochs=50),
                                  root=server.runs_dir)
            created = time.monotonic() - t0
            first = first_batch = None
            deadline = t0 + 180
            try:
                while first_batch is None and time.monotonic() < deadline:
                    if first is None and _first_record_time(run.metrics_path):
                        first = time.monotonic() - t0
                    if first is not None:
                        kinds = {r.get("kind") for r in run.metrics()}
                        if "batch" in kinds:
                            first_batch = time.monotonic() - t0
                    if run.state() not in runs.ACTIVE_STATES:
                        break
                    await asyncio.sleep(0.02 if first is None else 0.05)
                status = run.raw_status()
            finally:
                await end_run(run)
            started = status.get("started")
            trials.append({"dataset": dataset, "warm_worker_ready": warm,
                           "create_run_s": round(created, 3),
                           "first_record_s": round(first, 2) if first else None,
                           "first_batch_s": round(first_batch, 2) if first_batch else None,
                           "worker_started_s": round(started - created_wall, 2)
                           if isinstance(started, (int, float)) else None})
            print(f"  start {dataset}: first record {first and round(first, 2)} s, "
                  f"first batch {first_batch and round(first_batch, 2)} s", file=sys.stderr)
            await pause(server, 1)
    summary = {d: {"median_first_record_s": _median([t["first_record_s"] for t in trials
                                                      if t["dataset"] == d]),
                   "median_first_batch_s": _median([t["first_batch_s"] for t in trials
                                                     if t["dataset"] == d]),
                   "trials": sum(t["dataset"] == d for t in trials)}
               for d in datasets_here}
    return {"preset": "fast (precision auto, as the Train page starts it)",
            "trials": trials, "summary": summary}


# --- setup: a finished run, and the speed of training here -------------------------------
async def train_reference_run(server: Server, dataset: str) -> dict:
    from cnn import runs
    from cnn.presets import preset

    params = preset("fast", dataset=dataset, epochs=2, precision="float32")
    run = runs.create_run(params, root=server.runs_dir)
    deadline = time.monotonic() + 600
    while run.state() in runs.ACTIVE_STATES:
        if time.monotonic() > deadline:
            await end_run(run)
            raise RuntimeError(f"the reference run did not finish: {run.status()}")
        await pause(server, 0.5)
    status = run.status()
    if status.get("state") != runs.FINISHED:
        raise RuntimeError(f"the reference run failed: {status}\n{run.log_path.read_text()}")
    return {"run": run.id, "dataset": dataset, "train_images": status.get("train_images"),
            "images_per_second": status.get("train_images_per_second")}


# --- idle -----------------------------------------------------------------------------------
async def part_idle(server: Server, args, reference: dict) -> dict:
    from cnn import runs
    from cnn.presets import preset

    rows = []
    for page in ["baseline"] + args.pages + ["baseline"]:
        rows.append(await idle_row(server, args, page, training=False))
    if args.busy_pages:
        # The same pages while a run trains (started elsewhere; nobody watches it).
        run = runs.create_run(preset("fast", dataset=reference["dataset"], epochs=400,
                                     precision="float32"), root=server.runs_dir)
        try:
            deadline = time.monotonic() + 180
            while not any(r.get("kind") == "batch" for r in run.metrics()):
                if run.state() not in runs.ACTIVE_STATES or time.monotonic() > deadline:
                    raise RuntimeError(f"the background run did not train: {run.status()}")
                await pause(server, 0.2)
            for page in ["baseline"] + args.busy_pages:
                rows.append(await idle_row(server, args, page, training=True))
                if run.state() != runs.RUNNING:
                    raise RuntimeError(f"the background run ended early: {run.status()}")
        finally:
            await end_run(run)
    return {"clients": args.clients, "settle_s": args.settle, "window_s": args.window,
            "rows": rows}


async def idle_row(server: Server, args, page: str, training: bool) -> dict:
    """Server CPU while `args.clients` clients (0 for "baseline") sit on `page`."""
    from cnn import runs

    n = 0 if page == "baseline" else args.clients
    clients: list[LightClient] = []
    quieted = await quiet(server)
    try:
        before = server.cpu_seconds()
        if n:
            clients = await connect_all(server, PAGES[page], n)
        load_cpu = server.cpu_seconds() - before
        await pause(server, args.settle)
        window = CpuWindow(server)
        t0 = time.monotonic()
        await pause(server, args.window)
        cpu = window.stop()
        t1 = time.monotonic()
        row = {"page": page, "clients": n, "run_training": training, **cpu,
               "runs_on_disk": len(runs.list_runs(server.runs_dir)),
               "waited_for_quiet_s": quieted}
        if clients:
            span = t1 - t0
            traffic = [c.traffic(t0, t1) for c in clients]
            fragment_runs = [sum(t0 <= x <= t1 for x in c.fragment_runs_finished)
                             for c in clients]
            row.update({
                "per_client_deltas_per_s": round(
                    statistics.mean(t["deltas"] for t in traffic) / span, 2),
                "per_client_kb_per_s": round(
                    statistics.mean(t["bytes"] for t in traffic) / span / 1000, 2),
                "per_client_fragment_runs_per_s": round(
                    statistics.mean(fragment_runs) / span, 2),
                "polling_fragments_s": sorted(clients[0].polling.values()),
                "clients_disconnected": sum(not c.alive for c in clients),
                # Server CPU for opening the page (its first full run), per client.
                "load_cpu_s_per_client": round(load_cpu / n, 3),
                **loading(clients)})
        print(f"  idle {page} ({n} clients{', a run training' if training else ''}): "
              f"server {cpu['server_cpu_pct']} % of a core (load "
              f"{cpu['load_average']})", file=sys.stderr)
    finally:
        await close_all(clients)
    await pause(server, 3)
    return row


# --- watch ------------------------------------------------------------------------------------
async def follow_run(server: Server, run, epochs: int, timeout: float) -> dict:
    """Times (monotonic) when `run` recorded its first batch, finished training and ended,
    and the server's CPU between the first two."""
    from cnn import runs

    marks: dict = {}
    window = None
    deadline = time.monotonic() + timeout
    while True:
        await pause(server, 0.2)
        status = run.status()
        records = run.metrics()
        now = time.monotonic()
        if "first_batch" not in marks and any(r.get("kind") == "batch" for r in records):
            marks["first_batch"] = now
            window = CpuWindow(server)
        ended = status.get("state") not in runs.ACTIVE_STATES
        trained = sum(r.get("kind") == "epoch" for r in records) >= epochs or ended
        if window is not None and "train_end" not in marks and trained:
            marks["train_end"] = now
            marks["cpu"] = window.stop()
        if ended:
            marks["ended"] = now
            return marks
        if now > deadline:
            raise RuntimeError(f"the watched run did not end in time: {status}")


async def watch_once(server: Server, params, n: int, args) -> dict:
    """One run trained while `n` clients watch it on the Train page. The clients open the
    page just after the run is created, while it starts."""
    from cnn import runs

    t_created = time.monotonic()
    run = runs.create_run(params, root=server.runs_dir)
    follow = asyncio.create_task(follow_run(server, run, params.epochs,
                                            args.watch_seconds * 5 + 300))
    clients: list[LightClient] = []
    try:
        clients = await connect_all(server, "train", n, stagger=0.05)
        marks = await follow
        # Every client should show the end of the run (its Finished badge).
        await asyncio.gather(*(c.wait_for(lambda c=c: c.first_text(ENDED_BADGE, t_created)
                                          is not None, 30) for c in clients))
    finally:
        follow.cancel()
        await close_all(clients)
        await end_run(run)
    status = run.status()
    records = run.metrics()
    epoch_speeds = [r.get("images_per_second") for r in records
                    if r.get("kind") == "epoch" and not r.get("partial")]
    first_batch = marks.get("first_batch", t_created)
    end = marks.get("train_end", marks["ended"])
    per_client = []
    for client in clients:
        # From 2 s into training, or from when this client had loaded the page.
        loaded = client.full_runs_finished[0] if client.full_runs_finished else end
        start = max(first_batch + 2, loaded)
        changes = client.chart_changes(start, end)
        gaps = [b - a for a, b in itertools.pairwise(changes)]
        seen_end = client.first_text(ENDED_BADGE, t_created)
        per_client.append({
            "loaded_before_training": loaded <= first_batch,
            "chart_changes": len(changes),
            "median_interval_s": _median(gaps),
            "p90_interval_s": _percentile(gaps, 0.9),
            "longest_gap_s": round(max([*gaps, (changes[0] - start) if changes
                                        else max(0.0, end - start)]), 2),
            "saw_end": seen_end is not None,
            "end_seen_after_s": round(max(0.0, seen_end - marks["ended"]), 2)
            if seen_end else None,
            "disconnected": client.error})
    medians = [c["median_interval_s"] for c in per_client]
    p90s = [c["p90_interval_s"] for c in per_client]
    return {
        "clients": n, "run": run.id, "state": status.get("state"),
        "train_images_per_second": status.get("train_images_per_second"),
        "median_epoch_images_per_second": _median(epoch_speeds),
        "fit_seconds": status.get("fit_seconds"),
        "training_started_after_s": round(first_batch - t_created, 2),
        **loading(clients),
        "clients_loaded_before_training": sum(c["loaded_before_training"]
                                              for c in per_client),
        "training_window_s": round(end - first_batch, 1),
        "server_while_training": marks.get("cpu"),
        "chart_interval_median_s": _median(medians),
        "chart_interval_p90_s_median": _median(p90s),
        "chart_interval_p90_s_worst": max((p for p in p90s if p is not None), default=None),
        "clients_without_two_chart_changes": sum(m is None for m in medians),
        "clients_saw_end": sum(c["saw_end"] for c in per_client),
        "clients_disconnected": sum(c["disconnected"] is not None for c in per_client),
        "per_client": per_client,
    }


async def part_watch(server: Server, args, reference: dict) -> dict:
    from cnn.presets import preset

    dataset, speed = reference["dataset"], reference["images_per_second"] or 2000
    train_images = reference["train_images"]
    epochs = max(2, min(400, round(args.watch_seconds * speed / train_images)))
    params = preset("fast", dataset=dataset, epochs=epochs, precision="float32")
    print(f"  watch runs: fast preset, {dataset}, {epochs} epochs of {train_images:,} "
          f"images (~{args.watch_seconds:.0f} s at {speed:,.0f} images/s)", file=sys.stderr)
    order = []
    for pair in range(args.watch_repeats):
        order += [1, args.clients] if pair % 2 == 0 else [args.clients, 1]
    trials = []
    for n in order:
        await quiet(server)
        trial = await watch_once(server, params, n, args)
        trials.append(trial)
        print(f"  watched by {n}: {trial['train_images_per_second'] or 0:,.0f} images/s, "
              f"charts every {trial['chart_interval_median_s']} s (p90 "
              f"{trial['chart_interval_p90_s_median']}), {trial['clients_saw_end']}/{n} saw "
              f"the end, server {(trial['server_while_training'] or {}).get('server_cpu_pct')}"
              f" %", file=sys.stderr)
        await pause(server, 3)
    one = [t["train_images_per_second"] for t in trials if t["clients"] == 1]
    many = [t["train_images_per_second"] for t in trials if t["clients"] == args.clients]
    ratio = round(_median(many) / _median(one), 3) if _median(one) and _median(many) \
        else None
    summary = {}
    for n in sorted({1, args.clients}):
        mine = [t for t in trials if t["clients"] == n]
        summary[str(n)] = {
            "median_images_per_second": _median([t["train_images_per_second"]
                                                 for t in mine]),
            "chart_interval_median_s": _median([t["chart_interval_median_s"] for t in mine]),
            "chart_interval_p90_s": _median([t["chart_interval_p90_s_median"]
                                             for t in mine]),
            "chart_interval_p90_s_worst": max((t["chart_interval_p90_s_worst"] or 0
                                               for t in mine), default=None),
            "saw_end": f"{sum(t['clients_saw_end'] for t in mine)}/{n * len(mine)}",
            "server_cpu_pct_while_training": _median([
                (t["server_while_training"] or {}).get("server_cpu_pct") for t in mine])}
    return {"params": {"preset": "fast", "dataset": dataset, "epochs": epochs,
                       "precision": "float32"},
            "order": order, "trials": trials, "summary": summary,
            "images_per_second_ratio_N_over_1": ratio}


# --- report ------------------------------------------------------------------------------------
def table(results: dict) -> str:
    lines = []
    parts = results.get("parts", {})
    if "idle" in parts:
        lines += ["", (f"Idle clients: server CPU (% of one core) over "
                       f"{parts['idle']['window_s']} s"),
                  (f"{'page':10} {'clients':>7} {'loaded':>6} {'server %':>9} "
                   f"{'deltas/s':>9} {'kB/s':>6} {'frag/s':>7}  {'polls (s)':10} "
                   f"{'load':>11} {'machine %':>9}")]
        for r in parts["idle"]["rows"]:
            name = r["page"] + ("*" if r.get("run_training") else "")
            lines.append(
                f"{name:10} {r['clients']:>7} {r.get('clients_loaded', ''):>6} "
                f"{r['server_cpu_pct']:>9} "
                f"{r.get('per_client_deltas_per_s', ''):>9} "
                f"{r.get('per_client_kb_per_s', ''):>6} "
                f"{r.get('per_client_fragment_runs_per_s', ''):>7}  "
                f"{r.get('polling_fragments_s', '')!s:10} "
                f"{'→'.join(map(str, r['load_average'])):>11} {r['machine_cpu_pct']:>9}")
        lines.append("(*: while a run trains, nobody watching it; deltas/s, kB/s, frag/s: "
                     "per client; machine %: all cores, of 200)")
    if "watch" in parts:
        w = parts["watch"]
        lines += ["", (f"Watching a run ({w['params']['dataset']}, fast, "
                       f"{w['params']['epochs']} epochs, float32)"),
                  (f"{'clients':>7} {'loaded*':>7} {'images/s':>9} {'charts median s':>16} "
                   f"{'p90 s':>6} {'p90 worst':>9} {'saw end':>8} {'server %':>9}")]
        for t in w["trials"]:
            cpu = t["server_while_training"] or {}
            lines.append(f"{t['clients']:>7} {t['clients_loaded_before_training']:>7} "
                         f"{t['train_images_per_second'] or 0:>9,.0f} "
                         f"{t['chart_interval_median_s']!s:>16} "
                         f"{t['chart_interval_p90_s_median']!s:>6} "
                         f"{t['chart_interval_p90_s_worst']!s:>9} "
                         f"{t['clients_saw_end']:>4}/{t['clients']:<3} "
                         f"{cpu.get('server_cpu_pct')!s:>9}")
        lines.append("(loaded*: clients that had loaded the page when training began)")
        lines.append(f"images/s, N watching / 1 watching: "
                     f"{w['images_per_second_ratio_N_over_1']} (target >= 0.9)")
    if "appear" in parts:
        lines += ["", (f"A run started elsewhere appears (timeout "
                       f"{parts['appear']['timeout_s']:.0f} s)")]
        for key, s in parts["appear"]["summary"].items():
            lines.append(f"  {key:32} median {s['median_s']} s, seen {s['seen']}/"
                         f"{s['trials']}")
    if "start" in parts:
        lines += ["", "Start -> first live point (medians)"]
        for key, s in parts["start"]["summary"].items():
            lines.append(f"  {key:14} first record {s['median_first_record_s']} s, first "
                         f"batch {s['median_first_batch_s']} s ({s['trials']} runs)")
    for part, error in results.get("errors", {}).items():
        lines.append(f"\n{part}: FAILED — {error.splitlines()[0]}")
    lines.append(f"\nload average before/after: {results['machine']['load_average_before']}"
                 f" / {results['machine'].get('load_average_after')}")
    return "\n".join(lines)


async def bench(server: Server, args, results: dict, save) -> None:
    from cnn import datasets

    here = ["digits"] + ([FASHION] if datasets.is_available(FASHION) else [])
    results["datasets"] = here
    parts = results["parts"]
    errors = results["errors"]

    async def attempt(name, make):
        print(f"{name}…", file=sys.stderr)
        try:
            parts[name] = await make()
        except ServerDied:
            raise
        except Exception as error:  # noqa: BLE001  (one part failing must not lose the rest)
            errors[name] = f"{type(error).__name__}: {error}"
            print(f"  {name} failed: {error}", file=sys.stderr)
        save()

    if "appear" in args.only:
        await attempt("appear", lambda: part_appear(server, args))
    if "start" in args.only:
        await attempt("start", lambda: part_start(server, args, here))
    if "idle" in args.only or "watch" in args.only:
        print("training a reference run…", file=sys.stderr)
        results["reference_run"] = await train_reference_run(server, here[-1])
        print(f"  {results['reference_run']}", file=sys.stderr)
    if "idle" in args.only:
        await attempt("idle", lambda: part_idle(server, args, results["reference_run"]))
    if "watch" in args.only:
        await attempt("watch", lambda: part_watch(server, args, results["reference_run"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=30, help="N, the classroom")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts: {','.join(PARTS)}")
    parser.add_argument("--pages", default=",".join(PAGES),
                        help="pages for the idle part: " + ",".join(PAGES))
    parser.add_argument("--busy-pages", default="home",
                        help="idle: pages measured again while a run trains (none: '')")
    parser.add_argument("--window", type=float, default=30, help="idle: CPU window (s)")
    parser.add_argument("--settle", type=float, default=5,
                        help="idle: wait after every client has loaded (s)")
    parser.add_argument("--watch-seconds", type=float, default=60,
                        help="watch: how long each run should train (s)")
    parser.add_argument("--watch-repeats", type=int, default=2,
                        help="watch: pairs of (1 client, N clients) runs, alternated")
    parser.add_argument("--appear-repeats", type=int, default=3, help="appear: Home trials")
    parser.add_argument("--appear-timeout", type=float, default=30)
    parser.add_argument("--start-repeats", type=int, default=3, help="start: per dataset")
    parser.add_argument("--app-dir", type=Path, default=REPO,
                        help="the app to serve and whose core starts the runs (default: "
                        "this checkout; e.g. an export of another commit)")
    parser.add_argument("--app-label", default=None,
                        help="what the app under test is, for the results (e.g. a commit)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "classroom.json")
    args = parser.parse_args()
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    args.pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    args.busy_pages = [p.strip() for p in args.busy_pages.split(",") if p.strip()]
    unknown = [p for p in args.only if p not in PARTS] + \
        [p for p in args.pages + args.busy_pages if p not in PAGES]
    if unknown:
        parser.error(f"unknown part or page: {', '.join(unknown)}")
    app_dir = args.app_dir.resolve()
    if not (app_dir / "streamlit_app.py").exists():
        parser.error(f"{app_dir} has no streamlit_app.py")
    sys.path.insert(0, str(app_dir))  # the core of the app under test starts the runs
    os.environ["CNN_OFFLINE"] = "1"  # runs started here never download

    git = subprocess.run(["git", "-C", str(app_dir), "rev-parse", "--short", "HEAD"],
                         check=False, capture_output=True, text=True)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                    "python": platform.python_version(),
                    "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "app_dir": str(app_dir), "app_label": args.app_label,
        "commit": git.stdout.strip() or None,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "parts": {}, "errors": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        args.out.write_text(json.dumps(results, indent=1))

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-classroom-") as tmp:
        try:
            with serve(app_dir, Path(tmp)) as server:
                asyncio.run(bench(server, args, results, save))
        except ServerDied as error:
            results["errors"]["server"] = str(error)
            print(f"\nThe server died: {error}", file=sys.stderr)
        finally:
            results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            results["minutes"] = round((time.monotonic() - started) / 60, 1)
            save()
    print(table(results))
    print(f"\n(written to {args.out})")
    if results["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
