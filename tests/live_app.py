"""The app served for real: a Streamlit server in a subprocess, and Chromium to drive it.

Shared by the browser test (tests/test_browser.py) and the UI benchmark
(benchmarks/bench_ui.py). Nothing here imports streamlit or playwright: the server is its
own process, and the page helpers only call methods of the Playwright page they are given.
"""

from __future__ import annotations

import os
import shutil
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
def find_chromium() -> Path | None:
    """$CNN_CHROMIUM, else the first chromium on the PATH (Debian: /usr/bin/chromium)."""
    named = os.environ.get("CNN_CHROMIUM")
    if named:
        return Path(named) if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


CHROMIUM = find_chromium()
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
# Each page: its URL path (st.Page derives it from the file name; Home is the default) and
# its title (the page's h1).
PAGES = {"Home": ("", "CNN Playground"), "Data": ("data", "Data"),
         "Train": ("train", "Train"), "Evaluate": ("evaluate", "Evaluate"),
         "Classify": ("classify", "Classify")}
# The app's root element carries the script state: "running" while a script or fragment
# runs, "notRunning" once it has finished and stale elements are gone.
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


@dataclass
class LiveApp:
    url: str  # http://127.0.0.1:PORT
    runs_dir: Path  # the server's CNN_RUNS_DIR
    process: subprocess.Popen
    log_path: Path  # the server's stdout and stderr

    def page_url(self, page: str) -> str:
        return f"{self.url}/{PAGES[page][0]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@contextmanager
def serve(workdir: Path, startup_timeout: float = 120, warm: bool = False,
          extra_env: dict[str, str] | None = None, app_dir: Path = REPO):
    """`streamlit run streamlit_app.py` (of `app_dir`: this checkout, or another version of
    the app for a benchmark's baseline) on a free port of 127.0.0.1 until the block ends.

    The server gets CNN_RUNS_DIR=`workdir`/runs, CNN_OFFLINE=1, an empty Keras home in
    `workdir`, the caller's CNN_DATA_DIR and `extra_env`; warm workers only if `warm`.
    Its output goes to `workdir`/server.log. On exit the runs it started are stopped
    through cnn.runs (their workers are detached processes: ending the server would not
    end them), then the server, then any warm worker waiting for a run.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    runs_dir = workdir / "runs"
    runs_dir.mkdir(exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1",
           "KERAS_HOME": str(workdir / "keras-home"), "PYTHONUNBUFFERED": "1",
           "CNN_WARM_WORKER": "1" if warm else "0", "CNN_READY_MODELS": "0",
           **(extra_env or {})}
    log_path = workdir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
             "--server.address", "127.0.0.1", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=app_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
    app = LiveApp(url, runs_dir, process, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while not _healthy(url):
            if process.poll() is not None:
                raise RuntimeError(f"streamlit exited with {process.returncode}:\n{app.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit not healthy after {startup_timeout} s:\n"
                                   f"{app.log()}")
            time.sleep(0.1)
        yield app
    finally:
        try:
            stop_active_runs(runs_dir)
        finally:
            _end(process)
            from cnn import warm_workers

            warm_workers.stop_all(runs_dir)


def stop_active_runs(runs_dir: Path, timeout: float = 60) -> None:
    """Ask every queued or training run in `runs_dir` to stop, and wait until its worker
    has exited (it lets go of the run's lock last)."""
    from cnn import runs

    active = runs.active_runs(runs_dir)
    for run in active:
        try:
            run.request_stop()
        except Exception:  # it ended in between
            pass
    deadline = time.monotonic() + timeout
    while any(run.is_alive() for run in active) and time.monotonic() < deadline:
        time.sleep(0.1)


def _end(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it has its own session), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def launch_chromium(playwright):
    """Debian's Chromium: Playwright cannot download its own browser here."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# --- page helpers ----------------------------------------------------------------------------
def title(page, name: str):
    """The title (the only h1) of the page called `name` in the sidebar."""
    return page.get_by_role("heading", level=1, name=PAGES[name][1])


def assert_clean(page, app: LiveApp) -> None:
    """No exception box from Streamlit and no traceback or error text anywhere on the page
    (with the server's log in the message when there is one)."""
    from playwright.sync_api import expect

    exceptions = page.get_by_test_id("stException")
    if exceptions.count():
        raise AssertionError(f"Streamlit exception on the page: {exceptions.first.inner_text()}"
                             f"\n--- server log ---\n{app.log()[-4000:]}")
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(page.get_by_text("This app has encountered an error")).to_have_count(0)


def wait_until_idle(page, timeout: float = 60_000) -> None:
    """Until no script or fragment runs. Call it after waiting for something the rerun you
    caused draws: straight after a click the previous run's "notRunning" still shows."""
    page.locator(IDLE).wait_for(timeout=timeout)


def open_page(page, app: LiveApp, name: str, timeout: float = 60_000) -> None:
    """Load a page by its URL (a new session) and wait until it has finished drawing."""
    page.goto(app.page_url(name))
    title(page, name).wait_for(timeout=timeout)
    wait_until_idle(page, timeout)


def go_to(page, name: str, timeout: float = 60_000) -> None:
    """Switch pages with the sidebar, as a person does (same session)."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    title(page, name).wait_for(timeout=timeout)
    wait_until_idle(page, timeout)


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the select box labelled `label` (unless it is already chosen)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_role("combobox", name=label, exact=True)
    if box.input_value() == option:
        return
    # The keyboard opens the list reliably; a click can land while a rerun moves things,
    # and a rerun that redraws the box closes its list: then wait for it and open it again.
    for attempt in range(5):
        box.focus()
        box.press("ArrowDown")
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 4:
                raise
            wait_until_idle(page)
    page.wait_for_function("([el, v]) => el.value === v", arg=[box.element_handle(), option])


def set_number(page, label: str, value: int | float) -> None:
    """Type into the number input labelled `label` and commit it (Enter)."""
    field = page.get_by_role("spinbutton", name=label, exact=True)
    field.fill(str(value))
    field.press("Enter")
