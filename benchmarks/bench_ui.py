"""UI benchmarks in a real browser. Not a test: run it by hand, on a quiet machine.

    python benchmarks/bench_ui.py [--out bench-out/ui.json]

The app is served as for the browser test (tests/live_app.py: its own runs folder, offline)
and driven by headless Chromium. Times are taken inside the page (performance.now()), from
the click or key press to the moment Streamlit's script state turns back to "notRunning"
(the run, or fragment run, has finished and its stale elements are gone):

(1) first render of each page, median of 3 after one warm-up visit: `nav` is a click in the
    sidebar (the usual way, same session), `load` a fresh load of the page's URL (new
    session: HTML, JavaScript, WebSocket, script), from navigation start; `*_title_ms`
    until the page's title shows. (The Data page opens on CIFAR-10, missing here: its
    download panel polls every 0.5 s, so its running indicator is seldom off.)
(2) prediction latency: on Classify's "Test image" tab, "Pick a random test image" until
    the new prediction is shown (median of 5), and the core alone: `cnn.inference.predict`
    on a loaded model, one image (median of 50);
(3) how fast the UI answers while a run trains: one step of the Data page's "Images per
    class" slider, and switching to the Data page, median of 5 each, idle and then while a
    long digits run (tutorial preset) trains in its worker; both absolute and as a ratio.

A tiny digits run (fast preset, 1 epoch, 300 images) is trained first through cnn.runs, so
that Evaluate and Classify have something to show.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import live_app  # noqa: E402  (tests/live_app.py: the server and page helpers)
from live_app import choose, go_to, open_page  # noqa: E402

# Logs, in the page, every click or key press and every change of Streamlit's script state
# (with the page title at that moment), timed with performance.now(). Installed before any
# page script, so a fresh load is timed from navigation start.
RECORDER_JS = """
(() => {
  const log = [];
  window.__bench = log;
  window.__benchWatch = null;  // a heading's start: its text changes are logged too
  const now = () => performance.now();
  const input = () => log.push({t: now(), kind: 'input'});
  document.addEventListener('pointerdown', input, true);
  document.addEventListener('keydown', input, true);
  let lastState = null, lastTitle = null, lastText = null;
  new MutationObserver(() => {
    const h1 = document.querySelector('h1');
    const title = h1 ? h1.textContent : '';
    if (title !== lastTitle) { lastTitle = title; log.push({t: now(), kind: 'title', title}); }
    const app = document.querySelector('[data-testid="stApp"]');
    const state = app && app.getAttribute('data-test-script-state');
    if (state && state !== lastState) {
      lastState = state;
      log.push({t: now(), kind: 'state', state, title});
    }
    const watch = window.__benchWatch;
    if (watch) {
      const heading = [...document.querySelectorAll('h1, h2, h3, h4')]
        .find(h => h.textContent.startsWith(watch));
      const text = heading ? heading.textContent : null;
      if (text !== lastText) { lastText = text; log.push({t: now(), kind: 'text', text}); }
    }
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                        attributeFilter: ['data-test-script-state']});
})();
"""
TIMEOUT_MS = 120_000


def median_ms(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def log_length(page) -> int:
    return page.evaluate("window.__bench.length")


def settle_ms(page, start: int, heading: str | None = None, from_input: bool = True) -> float:
    """Milliseconds from the first input logged after index `start` (or from navigation
    start) until Streamlit's script state is "notRunning" again after having run, and
    `heading` is in the page title."""
    # Both must hold: the state back at "notRunning" and the title shown (React may draw
    # the title just after the state changes); the later of the two counts.
    condition = """([start, heading, fromInput]) => {
      const log = window.__bench;
      let state = null, title = '';  // as they were when the input came
      for (const e of log.slice(0, start)) {
        if (e.kind === 'state') state = e.state;
        if (e.kind === 'title') title = e.title;
      }
      let t0 = fromInput ? null : 0, ran = false, idle = false;
      for (const e of log.slice(start)) {
        if (e.kind === 'title') title = e.title;
        if (t0 === null) {
          if (e.kind === 'state') state = e.state;
          if (e.kind === 'input') { t0 = e.t; ran = state === 'running'; }
          continue;
        }
        if (e.kind === 'state') {
          if (e.state === 'running') { ran = true; idle = false; }
          else if (e.state === 'notRunning' && ran) idle = true;
        }
        if (idle && (!heading || title.includes(heading))) return e.t - t0;
      }
      return null;
    }"""
    try:
        handle = page.wait_for_function(condition, arg=[start, heading, from_input],
                                        timeout=TIMEOUT_MS, polling=20)
    except Exception:
        log = page.evaluate(f"window.__bench.slice({max(0, start - 3)})")
        raise RuntimeError(f"the page did not settle on {heading!r}: {log}") from None
    return float(handle.json_value())


def title_ms(page, start: int, heading: str, from_input: bool = True) -> float:
    """Milliseconds from the input (or navigation start) until `heading` is the title."""
    log = page.evaluate(f"window.__bench.slice({start})")
    t0 = next(e["t"] for e in log if e["kind"] == "input") if from_input else 0.0
    return next(e["t"] - t0 for e in log
                if e["kind"] == "title" and e["t"] >= t0 and heading in e["title"])


# --- (1) first render ------------------------------------------------------------------------
def bench_first_render(page, app, repeats: int) -> dict:
    """Per page: `*_ms` until the page has finished drawing (running indicator gone),
    `*_title_ms` until its title is shown."""
    results = {}
    for name in live_app.PAGES:  # every page once: the server imports all it needs
        open_page(page, app, name)
    for name in live_app.PAGES:
        heading = live_app.PAGES[name][1]
        times: dict[str, list[float]] = {"nav": [], "nav_title": [], "load": [], "load_title": []}
        for i in range(repeats + 1):  # the first visit warms up caches
            # Away first, so the click really switches pages.
            go_to(page, "Data" if name == "Home" else "Home")
            start = log_length(page)
            page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
            settled = settle_ms(page, start, heading)
            if i:
                times["nav"].append(settled)
                times["nav_title"].append(title_ms(page, start, heading))
        for i in range(repeats + 1):
            open_page(page, app, name)  # a new document: its log starts empty
            settled = settle_ms(page, 0, heading, from_input=False)
            if i:
                times["load"].append(settled)
                times["load_title"].append(title_ms(page, 0, heading, from_input=False))
        results[name] = {f"{key}_ms": median_ms(values) for key, values in times.items()}
        results[name]["all_ms"] = {key: [round(v) for v in values]
                                   for key, values in times.items()}
        print(f"  {name}: {results[name]}", file=sys.stderr)
    return results


# --- (2) prediction latency ----------------------------------------------------------------
def bench_prediction(page, app, run, clicks: int, core_repeats: int) -> dict:
    """`shown_ms`: until the heading of the new prediction is in the page; `settled_ms`:
    until Streamlit's running indicator is gone too."""
    open_page(page, app, "Classify")
    page.get_by_role("tab", name="Test image").click()
    button = page.get_by_role("button", name="Pick a random test image")
    page.evaluate("window.__benchWatch = 'Test image #'")
    shown, settled = [], []
    warm_up = True  # the first click loads the test set and warms the model up
    while len(shown) < clicks:
        start = log_length(page)
        button.click()
        settled_ms = settle_ms(page, start)
        page.get_by_role("heading", name="Test image #").wait_for()
        log = page.evaluate(f"window.__bench.slice({start})")
        clicked = next(e["t"] for e in log if e["kind"] == "input")
        texts = [e["t"] for e in log if e["kind"] == "text" and e["text"] and e["t"] > clicked]
        if warm_up or not texts:  # warming up, or the same image again: no new heading
            warm_up = False
            continue
        shown.append(texts[0] - clicked)
        settled.append(settled_ms)
    page.evaluate("window.__benchWatch = null")
    core = core_prediction_ms(run, core_repeats)
    return {"shown_ms": median_ms(shown), "settled_ms": median_ms(settled),
            "shown_all_ms": [round(v) for v in shown],
            "settled_all_ms": [round(v) for v in settled], **core}


def core_prediction_ms(run, repeats: int) -> dict:
    """cnn.inference.predict on one test image, the model loaded once (as the app caches it)."""
    from cnn import checkpoints, datasets, inference

    data = datasets.load("digits", download_missing=False)
    model = checkpoints.load_model(run.model_path)
    names = list(data.info.class_names)
    for image in data.x_test[:3]:  # the first calls trace the model's function
        inference.predict(model, [image], names, 5)
    times = []
    for image in data.x_test[:repeats]:
        start = time.perf_counter()
        inference.predict(model, [image], names, 5)
        times.append((time.perf_counter() - start) * 1000)
    return {"core_ms": round(statistics.median(times), 2),
            "core_min_ms": round(min(times), 2), "core_repeats": repeats}


# --- (3) responsiveness while training -----------------------------------------------------
def responsiveness(page, repeats: int) -> dict:
    """Data page, digits chosen: one slider step, and switching back to Data from Home."""
    slider = page.get_by_role("slider", name="Images per class")
    slider_times, switch_times = [], []
    for i in range(repeats + 1):
        start = log_length(page)
        slider.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        elapsed = settle_ms(page, start, "Data")
        if i:
            slider_times.append(elapsed)
    for i in range(repeats + 1):
        go_to(page, "Home")
        start = log_length(page)
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Data").click()
        elapsed = settle_ms(page, start, "Data")
        if i:
            switch_times.append(elapsed)
    return {"slider_ms": median_ms(slider_times), "switch_to_data_ms": median_ms(switch_times),
            "slider_all_ms": [round(v) for v in slider_times],
            "switch_all_ms": [round(v) for v in switch_times]}


def bench_while_training(page, app, repeats: int) -> dict:
    from cnn import runs
    from cnn.presets import preset

    open_page(page, app, "Data")
    choose(page, "Dataset", "Digits (scikit-learn)")
    page.get_by_role("slider", name="Images per class").wait_for()
    live_app.wait_until_idle(page)
    idle = responsiveness(page, repeats)
    print(f"  idle: {idle}", file=sys.stderr)

    # A run long enough to train through the whole measurement; stopped afterwards.
    run = runs.create_run(preset("tutorial", dataset="digits", epochs=500), root=app.runs_dir)
    deadline = time.monotonic() + 180
    while sum(r["kind"] == "batch" for r in run.metrics()) < 3:
        if run.state() not in runs.ACTIVE_STATES or time.monotonic() > deadline:
            raise RuntimeError(f"the long run did not start training: {run.status()}")
        time.sleep(0.1)
    go_to(page, "Data")
    try:
        busy = responsiveness(page, repeats)
        still = run.state()
        records = run.metrics()
    finally:
        live_app.stop_active_runs(app.runs_dir)
    if still != runs.RUNNING:
        raise RuntimeError(f"the long run ended during the measurement: {still}")
    print(f"  training: {busy}", file=sys.stderr)
    speed = [r["images_per_second"] for r in records if r.get("images_per_second")]
    return {
        "idle": idle, "training": busy,
        "ratio_slider": round(busy["slider_ms"] / idle["slider_ms"], 2),
        "ratio_switch": round(busy["switch_to_data_ms"] / idle["switch_to_data_ms"], 2),
        "training_images_per_second": round(statistics.median(speed)) if speed else None,
    }


def train_tiny_run(app):
    from cnn import runs
    from cnn.presets import preset

    run = runs.create_run(preset("fast", dataset="digits", epochs=1, train_size=300),
                          root=app.runs_dir)
    deadline = time.monotonic() + 300
    while run.state() in runs.ACTIVE_STATES:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tiny run did not finish: {run.status()}")
        time.sleep(0.2)
    if run.state() != runs.FINISHED:
        raise RuntimeError(f"the tiny run failed: {run.status()}\n{run.log_path.read_text()}")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=3, help="visits per page for (1)")
    parser.add_argument("--clicks", type=int, default=5, help="test images for (2)")
    parser.add_argument("--core", type=int, default=50, help="core predictions for (2)")
    parser.add_argument("--repeats", type=int, default=5, help="interactions for (3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "ui.json")
    args = parser.parse_args()
    os.environ["CNN_OFFLINE"] = "1"  # the runs started here never download
    if live_app.CHROMIUM is None:
        sys.exit("Needs Chromium (apt-get install chromium, or set CNN_CHROMIUM).")
    from playwright.sync_api import sync_playwright

    results: dict = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                                 "python": platform.python_version(),
                                 "load_average_before": [round(x, 2) for x in os.getloadavg()]}}
    with tempfile.TemporaryDirectory() as tmp, live_app.serve(Path(tmp)) as app, \
            sync_playwright() as playwright:
        browser = live_app.launch_chromium(playwright)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(RECORDER_JS)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        print("training a tiny digits run…", file=sys.stderr)
        run = train_tiny_run(app)
        print("(1) first render of each page", file=sys.stderr)
        results["1_first_render"] = bench_first_render(page, app, args.renders)
        print("(2) prediction latency", file=sys.stderr)
        results["2_prediction"] = bench_prediction(page, app, run, args.clicks, args.core)
        print(f"  {results['2_prediction']}", file=sys.stderr)
        print("(3) responsiveness, idle and while training", file=sys.stderr)
        results["3_while_training"] = bench_while_training(page, app, args.repeats)
        browser.close()
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
