"""Screenshots of the main pages with the ready-made networks, into assets/. Not a test.

    CNN_DATA_DIR=../shared/datasets python benchmarks/screenshots_app.py

The app is served as for the browser tests (tests/live_app.py) with the ready-made networks
copied into its empty runs folder (assets/ready/, as a first start does), so every page
has something to show without training. Each page at 1280x720 (a projector) and the Train
and Classify pages at 390x844 (a phone). Look at them: what a user sees is the product.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import live_app  # noqa: E402  (tests/live_app.py: the server and page helpers)
from playwright.sync_api import sync_playwright  # noqa: E402

PROJECTOR = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
SHOTS = [  # (file, page, query, viewport, whole page: 1800 px tall)
    ("screenshot-home.png", "", "", PROJECTOR, False),
    ("screenshot-data.png", "data", "", PROJECTOR, True),
    ("screenshot-train-settings.png", "train", "?dataset=fashion_mnist&preset=efficient",
     PROJECTOR, True),
    ("screenshot-evaluate.png", "evaluate", "", PROJECTOR, True),
    ("screenshot-leaderboard.png", "leaderboard", "", PROJECTOR, False),
    ("screenshot-classify.png", "classify", "", PROJECTOR, True),
    ("screenshot-presenter-1280x720.png", "train", "?presenter=1", PROJECTOR, False),
    ("screenshot-train-phone.png", "train", "", PHONE, False),
    ("screenshot-classify-phone.png", "classify", "", PHONE, True),
]


def main() -> None:
    out = REPO / "assets"
    with tempfile.TemporaryDirectory() as tmp, \
            live_app.serve(Path(tmp), extra_env={"CNN_READY_MODELS": "1"}) as app, \
            sync_playwright() as playwright:
        browser = live_app.launch_chromium(playwright)
        only = set(sys.argv[1:])  # file names, to retake some
        for name, path, query, viewport, full in SHOTS:
            if only and name not in only:
                continue
            # Streamlit scrolls inside its own container, so a whole page needs a tall window.
            page = browser.new_page(viewport={**viewport, "height": 1800} if full else viewport)
            page.set_default_timeout(60_000)
            page.goto(f"{app.url}/{path}{query}")
            if "presenter" in query:  # no title: the run's curves first
                page.get_by_test_id("stVegaLiteChart").first.wait_for()
            else:
                page.get_by_role("heading", level=1).first.wait_for()
            live_app.wait_until_idle(page)
            if path == "classify":
                page.get_by_role("tab", name="Test image").click()  # (with its icon's name)
                live_app.wait_until_idle(page)
                page.get_by_role("button", name="Pick a random test image").click()
                live_app.wait_until_idle(page)
            page.wait_for_timeout(1500)  # charts and images arrive after the script ends
            page.screenshot(path=str(out / name))
            page.close()
            print(out / name)
        browser.close()


if __name__ == "__main__":
    main()
