"""The app in a real browser: the Streamlit server in a subprocess, driven by headless Chromium.

One pass through what a student does: every page opens cleanly; a digits run is set up
with the Train page's widgets, started, watched while its curves grow, and ended with the
Stop button (so the test never depends on how fast the run is); the Evaluate page shows its
test accuracy and confusion matrix; the Classify page classifies an uploaded photo (and
names the broken file next to it) and a digit drawn with the mouse.
Screenshots of every step go to the test's tmp_path.

Run alone with `python -m pytest tests/test_browser.py -q` (about a minute on two idle cores).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import live_app
from cnn import runs
from live_app import assert_clean, choose, go_to, open_page, set_number, title, wait_until_idle

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by the `browser` fixture
    sync_playwright = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 60_000  # one step; generous: two CPU cores may be training something else
RUN_TIMEOUT_MS = 180_000  # start-up of the worker (TensorFlow) and the end of a stopped run
# Far longer than the test (hours at batch 8): it is ended with the Stop button.
EPOCHS = 500
TRAIN_IMAGES = 1000
VIEWPORT = {"width": 1400, "height": 1000}

# Sizes of the live charts: epoch dots plus the length of the drawn lines' paths. Both
# grow as records arrive (the x axis is fixed to the whole run).
CHART_SIZE_JS = """() => {
  let size = 0;
  for (const chart of document.querySelectorAll('[data-testid="stVegaLiteChart"]')) {
    size += chart.querySelectorAll('.mark-symbol.role-mark path').length;
    for (const line of chart.querySelectorAll('.mark-line.role-mark path'))
      size += (line.getAttribute('d') || '').length;
  }
  return size;
}"""
PROGRESS_JS = """() => {
  const bar = document.querySelector('[data-testid="stProgress"]');
  return bar ? bar.innerText : null;
}"""
# Every <img> shown inside `el` has arrived (Streamlit fetches images after drawing).
IMAGES_LOADED_JS = """el => {
  const shown = [...el.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width > 0);
  return shown.length > 0 && shown.every(i => i.complete && i.naturalWidth > 0);
}"""


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory):
    """The app served on a free port, with its own empty runs folder."""
    with live_app.serve(tmp_path_factory.mktemp("live-app")) as served:
        yield served


class Shots:
    """Numbered screenshots in a folder, one per step. Streamlit scrolls inside its main
    block, so a screenshot shows the window: `show` scrolls what matters into it first."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    def __call__(self, page, name: str, show=None) -> Path:
        if show is not None:
            show.scroll_into_view_if_needed()
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path))
        return path


def metric_value(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).get_by_test_id("stMetricValue")


def result_box(page, heading: str):
    """The (innermost) block holding one classified image, found by its heading."""
    return page.get_by_test_id("stVerticalBlock").filter(
        has=page.get_by_role("heading", name=heading)).last


def expect_prediction(page, heading: str, classes: int) -> None:
    """The box exists, its pictures have loaded and its top-k chart has a bar per guess."""
    box = result_box(page, heading)
    expect(box).to_be_visible()
    page.wait_for_function(IMAGES_LOADED_JS, arg=box.element_handle())
    expect(box.locator('[data-testid="stVegaLiteChart"] .mark-rect path')).to_have_count(
        classes)


# --- every page ----------------------------------------------------------------------------
def test_every_page_opens_cleanly_before_anything_is_trained(page, app, tmp_path):
    shot = Shots(tmp_path)
    for name in live_app.PAGES:
        open_page(page, app, name)
        expect(title(page, name)).to_be_visible()
        assert_clean(page, app)
        shot(page, name.lower())
        # The sidebar offers every page.
        nav = page.get_by_test_id("stSidebarNav")
        for other in live_app.PAGES:
            expect(nav.get_by_role("link", name=other)).to_be_visible()
    # With no run yet, Evaluate and Classify explain why and send the student to Train.
    for name in ("Evaluate", "Classify"):
        open_page(page, app, name)
        expect(page.get_by_text("No trained network yet")).to_be_visible()
        expect(page.get_by_role("link", name="Go to Train")).to_be_visible()


# --- the whole workflow ----------------------------------------------------------------------
def test_train_watch_evaluate_and_classify_a_tiny_digits_run(page, app, tmp_path):
    shot = Shots(tmp_path)

    # Train: the fast preset on digits, batch 8, a few epochs on a small subset.
    open_page(page, app, "Train")
    page.get_by_role("radio", name="Fast").click()
    expect(page.get_by_text("Small and quick")).to_be_visible()
    wait_until_idle(page)
    choose(page, "Dataset", "Digits (scikit-learn)")
    expect(page.get_by_text(re.compile(r"^Digits \(scikit-learn\) · [\d,]+ parameters"))
           ).to_be_visible()
    wait_until_idle(page)
    choose(page, "Batch size", "8")
    expect(page.get_by_text("Changed: batch size")).to_be_visible()
    wait_until_idle(page)
    set_number(page, "Epochs", EPOCHS)
    expect(page.get_by_text(f"· {EPOCHS} epochs")).to_be_visible()
    wait_until_idle(page)
    page.get_by_text("Advanced settings").click()
    expect(page.get_by_role("switch", name="Use only some training images")).to_be_checked()
    set_number(page, "Training images", TRAIN_IMAGES)
    expect(page.get_by_text("Changed: batch size, epochs, training images")).to_be_visible()
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, "train-settings", page.get_by_role("spinbutton", name="Training images"))

    # Start: the page switches to the Training tab and the run shows up on disk.
    page.get_by_role("button", name="Start training").click()
    expect(page.get_by_role("tab", name="Training")).to_have_attribute("aria-selected", "true")
    progress = page.get_by_test_id("stProgress")
    expect(progress).to_contain_text(re.compile(rf"Epoch \d+ of {EPOCHS}"),
                                     timeout=RUN_TIMEOUT_MS)
    [run] = runs.list_runs(app.runs_dir)
    params = run.config
    assert (params.dataset, params.batch_size, params.epochs, params.train_size) == (
        "digits", 8, EPOCHS, TRAIN_IMAGES)

    # The live curves appear while it trains, and grow.
    expect(page.get_by_test_id("stVegaLiteChart")).to_have_count(2)
    page.wait_for_function(f"() => ({CHART_SIZE_JS})() > 0")
    first_size, first_progress = page.evaluate(CHART_SIZE_JS), page.evaluate(PROGRESS_JS)
    if not first_progress:
        shot(page, "train-live-missed")
        raise AssertionError(f"the run ended before its curves could be watched growing: "
                             f"{run.status()}, {len(run.metrics())} records")
    shot(page, "train-live-1")
    # Until the progress line moves on and the curves have grown, or the live view is gone.
    page.wait_for_function(
        f"([size, text]) => ({PROGRESS_JS})() === null || (({PROGRESS_JS})() !== text"
        f" && ({CHART_SIZE_JS})() > size)",
        arg=[first_size, first_progress], timeout=RUN_TIMEOUT_MS, polling=50)
    later_size, later_progress = page.evaluate(CHART_SIZE_JS), page.evaluate(PROGRESS_JS)
    assert later_progress, f"the run ended before its curves grew on the page: {run.status()}"
    assert later_size > first_size and later_progress != first_progress
    assert_clean(page, app)
    shot(page, "train-live-2")

    # Stop: it ends after the current batch, and the page shows the test accuracy of the
    # network learnt so far, as the run wrote it to disk.
    page.get_by_role("button", name="Stop training").click()
    expect(page.get_by_text(re.compile(r"^Stopped after [\d.]+ epochs?: test accuracy"))
           ).to_be_visible(timeout=RUN_TIMEOUT_MS)
    status = run.status()
    assert status["state"] == runs.STOPPED, status
    accuracy = f"{status['test_accuracy']:.1%}"
    expect(metric_value(page, "Test accuracy")).to_have_text(accuracy)
    expect(metric_value(page, "Epochs trained")).to_have_text(f"{status['epochs_trained']:g}")
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, "train-stopped")

    # Evaluate, through the page's own "Next" link: the same accuracy, and a 10×10
    # confusion matrix whose numbers add up to the test set.
    page.get_by_role("link", name="Next: see where it goes wrong on Evaluate").click()
    expect(title(page, "Evaluate")).to_be_visible()
    wait_until_idle(page)
    expect(page.get_by_role("combobox", name="Trained network")).to_have_value(
        re.compile(re.escape(run.id)))
    expect(metric_value(page, "Test accuracy")).to_have_text(accuracy)
    expect(page.get_by_role("heading", name="Confusion matrix")).to_be_visible()
    matrix = page.get_by_test_id("stVegaLiteChart").filter(has=page.locator(".mark-rect"))
    expect(matrix.locator(".mark-rect.role-mark path")).to_have_count(100)
    report = json.loads(run.evaluation_path.read_text())
    counts = matrix.locator(".mark-text.role-mark text").evaluate_all(
        "texts => texts.map(t => Number(t.textContent))")  # SVG text has no innerText
    assert sum(counts) == report["test_images"] == np.sum(report["confusion_matrix"])
    assert_clean(page, app)
    shot(page, "evaluate", matrix)

    # Classify (a): a real photo and a broken file at once.
    photo, broken = tmp_path / "chelsea.png", tmp_path / "broken.png"
    from skimage import data as skimage_data

    Image.fromarray(skimage_data.chelsea()).save(photo)
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # a PNG signature, then nothing
    go_to(page, "Classify")
    expect(page.get_by_role("combobox", name="Trained network")).to_have_value(
        re.compile(re.escape(run.id)))
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files([photo, broken])
    expect_prediction(page, "chelsea.png: the network says", classes=5)
    expect(page.get_by_test_id("stAlert").filter(has_text="broken.png")).to_contain_text(
        "cannot be read")
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, "classify-upload", result_box(page, "chelsea.png: the network says"))

    # Classify (b): a digit drawn with the mouse on the canvas.
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    x, top, height = box["x"] + box["width"] / 2, box["y"], box["height"]
    page.mouse.move(x, top + 0.15 * height)
    page.mouse.down()
    page.mouse.move(x, top + 0.85 * height, steps=20)  # a "1": one stroke down the middle
    page.mouse.up()
    expect_prediction(page, "Your drawing: the network says", classes=5)
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, "classify-drawing")

    # Home's "Latest result" is this run.
    go_to(page, "Home")
    expect(metric_value(page, "Test accuracy")).to_have_text(accuracy)
    expect(page.get_by_text("Nothing is training right now.")).to_be_visible()
    assert_clean(page, app)
    shot(page, "home-after")


def test_on_a_phone_every_preset_is_on_the_screen(browser, app):
    """At a phone's width the row of presets wraps instead of running past the screen's
    edge (where the last preset could be neither seen nor tapped)."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        open_page(page, app, "Train")
        presets = page.get_by_role("radiogroup", name="Preset")
        expect(presets).to_be_visible()
        names = ["Tutorial", "Fast", "Efficient", "Strong", "Drawings"]
        for name in names:
            box = presets.get_by_role("radio", name=name).bounding_box()
            assert box and 0 <= box["x"] and box["x"] + box["width"] <= 390, (name, box)
        page.get_by_role("radio", name="Drawings").click()
        expect(page.get_by_text(re.compile(r"^For drawings \(digits"))).to_be_visible()
        assert_clean(page, app)
    finally:
        context.close()
