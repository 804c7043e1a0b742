"""The Inside page in a real browser: how long it takes, and its screenshots. Not a test:
run it by hand, on a quiet machine.

    python benchmarks/bench_inside.py [--run-dir RUN] [--out bench-out/inside.json]
                                      [--shots assets]

Served as for the browser test (tests/live_app.py) and timed as benchmarks/bench_ui.py
times (in the page, from the click to Streamlit's script state back at "notRunning"):

(1) the core: `Explainer.explain` on one test image with the model loaded and the explainer
    built once (as the page caches them): the default map only, and all four maps (what
    the page shows), median over 30 test images;
(2) the page: a fresh load of /inside?run=…&test=… (from navigation start), "Another test
    image" (a new image: every panel recomputed), and the class picker ("why not …?": only
    the "where it looked" fragment reruns), medians of 5 after a warm-up; next to
    Classify's "Pick a random test image" on the same server, the app's cheapest reaction;
(3) screenshots at 1280×720 (the top of the page, and its layers) and at 390×844 (a phone),
    into --shots.

The run: --run-dir (a run folder, copied), else the tutorial preset trained for 2 epochs on
12,000 Fashion-MNIST images ($CNN_DATA_DIR or ../shared/datasets), else on digits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "benchmarks")]

import live_app  # noqa: E402  (tests/live_app.py: the server and page helpers)
from bench_ui import RECORDER_JS, log_length, median_ms, settle_ms  # noqa: E402

SHOWN_TEST_IMAGE = 0  # the screenshots' image: Fashion-MNIST's first test image, a boot


def train_run(runs_dir: Path) -> Path:
    from cnn import datasets, runs, training
    from cnn.presets import preset

    fashion = datasets.is_available("fashion_mnist")
    params = preset("tutorial", dataset="fashion_mnist" if fashion else "digits",
                    train_size=12_000 if fashion else None, epochs=2)
    run = runs.create_run(params, root=runs_dir, start=False)
    print(f"training {run.id}…", file=sys.stderr)
    status = training.execute(run)
    assert status["state"] == runs.FINISHED, status
    return run.path


def core_ms(run_path: Path, repeats: int) -> dict:
    from cnn import checkpoints, datasets, explain, runs

    run = runs.Run(run_path)
    images = datasets.load(run.config.dataset, download_missing=False).x_test[:repeats]
    explainer = explain.Explainer(checkpoints.load_model(run.model_path))
    result = {}
    for name, methods in (("default_map", [explain.DEFAULT_METHOD]),
                          ("all_four_maps", list(explain.METHODS))):
        explainer.explain(images[0], None, methods)  # traces once
        times = []
        for image in images:
            start = time.perf_counter()
            explainer.explain(image, None, methods)
            times.append(1000 * (time.perf_counter() - start))
        result[f"core_{name}_ms"] = median_ms(times)
    return result


def page_ms(page, app, run_id: str, repeats: int) -> dict:
    """Medians of `repeats` after one warm-up each."""
    url = f"{app.url}/inside?run={run_id}&test={SHOWN_TEST_IMAGE}"
    load = []
    for i in range(repeats + 1):
        page.goto(url)
        load.append(settle_ms(page, 0, "Inside the network", from_input=False))
    another, picker = [], []
    button = page.get_by_role("button", name="Another test image")
    box = page.get_by_role("combobox", name="Where did it look for…")
    for i in range(repeats + 1):
        start = log_length(page)
        button.click()
        another.append(settle_ms(page, start))
    for i in range(repeats + 1):
        start = log_length(page)
        box.focus()
        box.press("ArrowDown")
        page.get_by_role("option").nth(1 + i % 3).click()
        picker.append(settle_ms(page, start))
    classify = []
    live_app.open_page(page, app, "Classify")
    page.get_by_role("tab", name="Test image").click()
    pick = page.get_by_role("button", name="Pick a random test image")
    for i in range(repeats + 1):
        start = log_length(page)
        pick.click()
        classify.append(settle_ms(page, start))
    result = {}
    for name, values in (("load", load), ("another_image", another), ("class_picker", picker),
                         ("classify_random_image", classify)):
        result[f"{name}_ms"] = median_ms(values[1:])
        result[f"{name}_all_ms"] = [round(v) for v in values]
    return result


def screenshots(browser, app, run_id: str, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    url = f"{app.url}/inside?run={run_id}&test={SHOWN_TEST_IMAGE}"
    taken = []
    for name, size, show in (("screenshot-inside.png", (1280, 720), None),
                             ("screenshot-inside-layers.png", (1280, 720),
                              "The layers, left to right"),
                             ("screenshot-inside-phone.png", (390, 844), "Test image #")):
        context = browser.new_context(viewport={"width": size[0], "height": size[1]})
        page = context.new_page()
        page.set_default_timeout(120_000)  # a busy machine
        page.goto(url)
        # The page's last heading: the script has drawn everything.
        page.get_by_role("heading", name="What each filter looks for").wait_for()
        live_app.wait_until_idle(page)
        page.wait_for_function("() => [...document.querySelectorAll('img')].every("
                               "i => i.complete && i.naturalWidth > 0)")
        if show:
            heading = page.get_by_role("heading", name=show).first
            heading.evaluate("h => h.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(1500)  # what comes into view is fetched then
            page.wait_for_function("() => [...document.querySelectorAll('img')].every("
                                   "i => i.complete && i.naturalWidth > 0)")
        page.wait_for_timeout(1000)  # charts finish drawing
        page.screenshot(path=str(folder / name))
        taken.append(str(folder / name))
        context.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="a finished run folder to show")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "inside.json")
    parser.add_argument("--shots", type=Path, default=REPO / "bench-out" / "inside-shots")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not os.environ.get("CNN_DATA_DIR") and (REPO.parent / "shared" / "datasets").exists():
        os.environ["CNN_DATA_DIR"] = str(REPO.parent / "shared" / "datasets")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as workdir, live_app.serve(Path(workdir)) as app:
        if args.run_dir:
            run_path = app.runs_dir / args.run_dir.name
            shutil.copytree(args.run_dir, run_path)
        else:
            run_path = train_run(app.runs_dir)
        results = {"machine": platform.processor() or platform.machine(),
                   "cpus": os.cpu_count(), "run": run_path.name,
                   **core_ms(run_path, 30)}
        with sync_playwright() as playwright:
            browser = live_app.launch_chromium(playwright)
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            context.add_init_script(RECORDER_JS)
            page = context.new_page()
            page.set_default_timeout(120_000)  # a busy machine
            results.update(page_ms(page, app, run_path.name, args.repeats))
            context.close()
            results["screenshots"] = screenshots(browser, app, run_path.name, args.shots)
            browser.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if not k.endswith("all_ms")}, indent=1))


if __name__ == "__main__":
    main()
