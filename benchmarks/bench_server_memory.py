"""The server's memory after the worst an upload and the Train form can do. Not a test.

    CNN_DATA_DIR=../shared/datasets python benchmarks/bench_server_memory.py

The app is served as for the browser tests (tests/live_app.py), with the ready-made networks
in its runs folder, and driven by headless Chromium. The server's resident memory (psutil,
the Streamlit process alone: training happens in other processes) is read when the app has
started, after each step, and 20 s after the last, once its caches have settled:
1. Classify, with the ready-made Fashion-MNIST network: a 24 MB JPEG photo of 7,000×7,000
   pixels (under the 25 MB upload limit, under the 50-megapixel limit: the largest
   picture the page takes), then a tiny PNG that decodes to 7,000×7,000 16-bit pixels, then
   a decompression bomb (refused).
2. Train: the biggest network the form lets a student start (10 M parameters at most, see
   cnn/architecture.py; here the strong preset on Fashion-MNIST with 8,192 dense units),
   planned in the form (the server never builds it), then one over the limit (refused).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import live_app
from playwright.sync_api import sync_playwright
from test_hostile_input import png_16bit


def rss_mb(app) -> float:
    return psutil.Process(app.process.pid).memory_info().rss / 2**20


def big_photo(path: Path) -> Path:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(small).resize((7000, 7000), Image.Resampling.BICUBIC).save(
        path, quality=85)
    return path


def bomb(path: Path) -> Path:
    Image.new("L", (20_000, 20_000)).save(path, optimize=True)  # 400 megapixels, a few KB
    return path


def upload(page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
    live_app.wait_until_idle(page, 120_000)
    page.wait_for_timeout(2000)
    live_app.wait_until_idle(page, 120_000)


def main() -> None:
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, \
            live_app.serve(Path(tmp) / "app", extra_env={"CNN_READY_MODELS": "1"}) as app, \
            sync_playwright() as playwright:
        files = Path(tmp)
        browser = live_app.launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(120_000)
        page.goto(app.url)
        live_app.wait_until_idle(page)
        figures["started"] = rss_mb(app)

        page.goto(f"{app.url}/classify")
        live_app.wait_until_idle(page)
        figures["classify open"] = rss_mb(app)
        photo = big_photo(files / "photo.jpg")
        figures["photo_mb"] = photo.stat().st_size / 2**20
        upload(page, photo)
        figures["after a 7000x7000 JPEG"] = rss_mb(app)
        (files / "deep.png").write_bytes(png_16bit(7000))
        upload(page, files / "deep.png")
        figures["after a 7000x7000 16-bit PNG"] = rss_mb(app)
        upload(page, bomb(files / "bomb.png"))
        figures["after a decompression bomb (refused)"] = rss_mb(app)
        figures["bomb refused"] = page.get_by_text("too large").count() > 0

        page.goto(f"{app.url}/train?dataset=fashion_mnist&preset=strong")
        live_app.wait_until_idle(page)
        # The biggest the form allows: strong's net on Fashion-MNIST (3x3x128 features) with
        # the widest dense layer (8,192 units), just under 10 M parameters; then a second
        # dense layer, which takes it over the limit.
        for units, key in (("8192", "biggest network allowed (planned)"),
                           ("8192, 64", "a network over the limit (refused)")):
            page.get_by_role("textbox", name="Dense layers").fill(units)
            page.get_by_role("textbox", name="Dense layers").press("Enter")
            live_app.wait_until_idle(page)
            page.wait_for_timeout(1500)
            live_app.wait_until_idle(page)
            figures[key] = rss_mb(app)
            # The Start bar names the network's size (the form's one, checked or not).
            bar = page.get_by_text(re.compile(r"[\d,]+ parameters")).first
            figures[key + ": Start bar"] = bar.inner_text() if bar.count() else None
        page.screenshot(path=str(REPO / "bench-out" / "server-memory-train.png"))
        figures["refusal shown"] = page.get_by_text("are allowed so that training fits").count() > 0
        time.sleep(20)
        figures["20 s later"] = rss_mb(app)
        browser.close()
    figures = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}
    out = REPO / "bench-out" / "server_memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
