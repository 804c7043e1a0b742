"""Screenshots of the own-data parts of the app, at 1280x720, into assets/. Not a test.

    python benchmarks/screenshots_own_data.py

The app is served as for the browser test (tests/live_app.py) with an empty data folder.
"Make your own": a draft with three classes of shapes, each example drawn with the mouse on
the real canvas, and one more drawing waiting to be added. Data: a zip of scikit-image
photos (and a file that is not an image) added as a dataset, with its report.
"""

from __future__ import annotations

import io
import math
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import live_app  # noqa: E402
import pen_strokes  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402
from test_own_datasets import photo_files  # noqa: E402

ASSETS = REPO / "assets"
SHAPES = ("circle", "triangle", "star")


def shape(kind: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """One hand-drawn shape on the 280 px canvas: jittered, of some size, somewhere."""
    cx, cy = rng.uniform(110, 170, size=2)
    r = rng.uniform(60, 95)
    turn = rng.uniform(-0.3, 0.3)
    if kind == "circle":
        angles = np.linspace(-90, 275, 40)
        points = [(math.cos(math.radians(a)), math.sin(math.radians(a))) for a in angles]
    elif kind == "triangle":
        points = [(math.cos(a), math.sin(a)) for a in
                  np.radians([-90, 30, 150, -90])]
    else:
        points = [(math.cos(a) * (1 if i % 2 == 0 else 0.45),
                   math.sin(a) * (1 if i % 2 == 0 else 0.45))
                  for i, a in enumerate(np.radians(np.arange(-90, 271, 36)))]
    path = []
    for (x, y), (x2, y2) in zip(points, points[1:]):
        for t in np.linspace(0, 1, 6, endpoint=False):
            px, py = x + (x2 - x) * t, y + (y2 - y) * t
            px, py = (px * math.cos(turn) - py * math.sin(turn),
                      px * math.sin(turn) + py * math.cos(turn))
            path.append((cx + r * px + rng.normal(0, 1.5), cy + r * py + rng.normal(0, 1.5)))
    return [path]


def draw(page, paths) -> None:
    add = page.get_by_role("button", name="Add this drawing to")
    for _ in range(3):
        pen_strokes.draw_on_canvas(page, page.locator("canvas.upper-canvas"), paths)
        try:
            expect(add).to_be_enabled(timeout=10_000)
            return
        except AssertionError:
            continue
    raise RuntimeError("the canvas did not take the drawing")


def make_dataset(app, page) -> None:
    page.goto(f"{app.url}/make_dataset")
    page.get_by_role("heading", level=1, name="Make a dataset").wait_for()
    live_app.wait_until_idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill("shapes")
    page.get_by_role("textbox", name="Classes, one per line (2 to 10)").fill(
        "\n".join(SHAPES))
    page.get_by_role("button", name="Create").click()
    classes = page.get_by_role("radiogroup", name="Add examples to")
    expect(classes).to_be_visible()
    live_app.wait_until_idle(page)
    rng = np.random.default_rng(5)
    for kind, count in zip(SHAPES, (6, 6, 3)):
        radio = classes.get_by_role("radio", name=kind, exact=True)
        radio.click()
        expect(radio).to_have_attribute("aria-checked", "true")
        live_app.wait_until_idle(page)
        for number in range(1, count + 1):
            draw(page, shape(kind, rng))
            page.get_by_role("button", name=f"Add this drawing to {kind}").click()
            expect(page.get_by_text(re.compile(rf"^{kind} · {number} examples?"))
                   ).to_be_visible()
            live_app.wait_until_idle(page)
    draw(page, shape("star", rng))  # the next one, not added yet
    live_app.wait_until_idle(page)
    page.mouse.move(5, 5)
    page.get_by_role("heading", level=1).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ASSETS / "screenshot-make-dataset.png"))


def data_page(app, page, work: Path) -> None:
    files = photo_files(12)
    files["rocket/flight-notes.txt"] = b"not an image"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"kitchen/{name}", data)
    source = work / "kitchen.zip"
    source.write_bytes(buffer.getvalue())
    page.goto(f"{app.url}/data")
    page.get_by_role("heading", level=1, name="Data").wait_for()
    live_app.wait_until_idle(page)
    page.get_by_text("Your own images: add a zip or a folder").click()
    live_app.wait_until_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(source)
    expect(page.get_by_role("textbox", name="Dataset name")).to_have_value("kitchen")
    live_app.wait_until_idle(page)
    page.get_by_role("button", name="Add as a dataset").click()
    page.get_by_text("Added kitchen").wait_for()
    live_app.wait_until_idle(page)
    page.get_by_text("1 file skipped").click()
    live_app.wait_until_idle(page)
    page.mouse.move(5, 5)
    page.get_by_text("Your own images: add a zip or a folder").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ASSETS / "screenshot-data-own.png"))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="shots-own-data-"))
    os.environ["CNN_DATA_DIR"] = str(work / "data")
    with live_app.serve(work / "app") as app, sync_playwright() as playwright:
        browser = live_app.launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(60_000)
        make_dataset(app, page)
        data_page(app, page, work)
        browser.close()
    print("written:", ", ".join(str(p.relative_to(REPO)) for p in
                                sorted(ASSETS.glob("screenshot-*own*.png"))
                                + [ASSETS / "screenshot-make-dataset.png"]))


if __name__ == "__main__":
    main()
