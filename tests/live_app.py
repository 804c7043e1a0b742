"""The app served for real: a Streamlit server in a subprocess, and Chromium to drive it.

Shared by the browser test (tests/test_browser.py) and the UI benchmark
(benchmarks/bench_ui.py). Nothing here imports streamlit: the server is its own process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
# Page paths as the browser sees them (st.Page derives them from the file names).
PAGES = {"Home": "", "Data": "data", "Train": "train", "Evaluate": "evaluate",
         "Classify": "classify"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveApp:
    url: str  # http://127.0.0.1:PORT
    runs_dir: Path
    process: subprocess.Popen
    log_path: Path

    def page_url(self, page: str) -> str:
        return f"{self.url}/{PAGES[page]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


def stop_active_runs(runs_dir: Path, timeout: float = 60) -> None:
    """Ask every queued or training run under `runs_dir` to stop, and wait until its worker
    has let go of its lock (the worker evaluates what it learnt, then exits)."""
    from cnn import runs

    active = runs.active_runs(runs_dir)
    for run in active:
        try:
            run.request_stop()
        except Exception:  # it ended in between
            pass
    deadline = time.monotonic() + timeout
    while any(run.is_alive() for run in active) and time.monotonic() < deadline:
        time.sleep(0.2)


def wait_for_run_end(run, timeout: float) -> dict:
    """Poll a run's status until it leaves the active states; returns the final status."""
    from cnn import runs

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = run.status()
        if status.get("state") not in runs.ACTIVE_STATES:
            return status
        time.sleep(0.2)
    raise TimeoutError(f"run {run.id} still {run.status().get('state')} after {timeout} s")


@contextmanager
def serve(runs_dir: Path, log_path: Path, startup_timeout: float = 90, extra_env=None):
    """Run `streamlit run streamlit_app.py` on a free port until the block ends.

    The server sees CNN_RUNS_DIR=`runs_dir`, CNN_OFFLINE=1 and the caller's CNN_DATA_DIR.
    On exit, active runs are stopped through cnn.runs (their workers are detached, so
    killing the server would not end them), then the server's process group is ended.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1",
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    runs_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    app = LiveApp(url, runs_dir, process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{app.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit not healthy after {startup_timeout} s:\n"
                                   f"{app.log()}")
            time.sleep(0.2)
        yield app
    finally:
        try:
            stop_active_runs(runs_dir)
        finally:
            _end(process)
            log.close()


def _end(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def launch_chromium(playwright):
    """Debian's Chromium (Playwright cannot download its own browser here)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
