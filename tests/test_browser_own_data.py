"""Own data in a real browser: a dataset made on "Make your own" by drawing with the mouse on
the real canvas, trained (tiny) from the Train page, and a new drawing classified; a folder
of class folders uploaded on the Data page. Screenshots of every step go to tmp_path.

The drawings are made-up people's digits (tests/pen_strokes.py), drawn along their strokes
with Chromium's mouse. Run alone with `python -m pytest tests/test_browser_own_data.py -q`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pen_strokes
import pytest
from PIL import Image
from test_own_datasets import photo_files, write_folder

import live_app
from cnn import datasets, own_datasets, runs
from live_app import assert_clean, set_number, wait_until_idle

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the `browser` fixture
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 240
VIEWPORT = {"width": 1280, "height": 720}
PER_CLASS = 5  # the fewest a class may have


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("own-data")


@pytest.fixture(scope="module")
def app(browser, data_dir, tmp_path_factory):
    """The app, with a data folder of its own (drafts and own datasets are written there)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CNN_DATA_DIR", str(data_dir))
        with live_app.serve(tmp_path_factory.mktemp("live-app")) as served:
            patch.undo()
            yield served


def shot(page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))


def draw(page, paths) -> None:
    """Draw on the page's canvas, as a person does, until the page has the drawing."""
    add = page.get_by_role("button", name=re.compile(r"^Add this drawing to"))
    for _ in range(3):
        pen_strokes.draw_on_canvas(page, page.locator("canvas.upper-canvas"), paths)
        try:
            expect(add).to_be_enabled(timeout=10_000)
            return
        except AssertionError:  # the canvas missed the stroke: a person draws it again
            continue
    raise AssertionError("the canvas never took the drawing")


def test_make_train_and_classify_a_drawn_dataset(page, app, data_dir, tmp_path):
    folks = pen_strokes.people(PER_CLASS + 1, seed=11)
    page.goto(f"{app.url}/make_dataset")
    expect(page.get_by_role("heading", level=1, name="Make a dataset")).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill("zero_one")
    page.get_by_role("textbox", name="Classes, one per line (2 to 10)").fill("zero\none")
    page.get_by_role("button", name="Create").click()
    classes = page.get_by_role("radiogroup", name="Add examples to")
    expect(classes).to_be_visible()
    wait_until_idle(page)
    folder = data_dir / "drafts" / "local" / "zero_one"
    for class_name, digit in (("zero", "0"), ("one", "1")):
        radio = classes.get_by_role("radio", name=class_name, exact=True)
        radio.click()
        expect(radio).to_have_attribute("aria-checked", "true")
        wait_until_idle(page)
        for number, person in enumerate(folks[:PER_CLASS], start=1):
            draw(page, pen_strokes.strokes(digit, person, np.random.default_rng(number)))
            page.get_by_role("button", name=f"Add this drawing to {class_name}").click()
            # On disk at once, and counted on the page.
            expect(page.get_by_text(re.compile(
                rf"^{class_name} · {number} examples?"))).to_be_visible()
            assert (folder / class_name / f"{number}.png").is_file()
            wait_until_idle(page)
    saved = Image.open(folder / "zero" / "1.png")
    assert saved.mode == "L" and np.asarray(saved).max() == 255  # white ink on black
    assert_clean(page, app)
    shot(page, tmp_path, "01-make-dataset")

    # A second tab (a refresh, another browser) sees the same draft.
    other = page.context.new_page()
    other.goto(f"{app.url}/make_dataset")
    expect(other.get_by_text(re.compile(r"^one · 5 examples"))).to_be_visible()
    other.close()

    # Build and train: the Train page opens on the new dataset.
    page.get_by_role("button", name="Build and train").click()
    expect(page.get_by_role("heading", level=1, name="Train")).to_be_visible()
    wait_until_idle(page)
    info = datasets.get_info("zero_one", data_dir)
    assert info.own and info.class_names == ("one", "zero") and info.light_on_dark
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("zero_one")
    page.get_by_role("radio", name="Drawings").click()
    expect(page.get_by_text(re.compile(r"^For drawings \(digits, your own"))).to_be_visible()
    wait_until_idle(page)
    set_number(page, "Epochs", 2)
    expect(page.get_by_text("· 2 epochs")).to_be_visible()
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, tmp_path, "02-train-settings")
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        found = runs.list_runs(app.runs_dir)
        if found and found[0].state() in runs.FINAL_STATES:
            break
        assert time.monotonic() < deadline, found and found[0].status()
        time.sleep(0.5)
    [run] = found
    assert run.state() == runs.FINISHED, run.status()
    assert run.config.dataset == "zero_one" and run.config.augment_rotation > 0

    # Classify a new drawing of a zero by someone who drew none of the examples.
    page.goto(f"{app.url}/classify")
    expect(page.get_by_role("heading", level=1, name="Classify")).to_be_visible()
    wait_until_idle(page)
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    pen_strokes.draw_on_canvas(page, canvas, pen_strokes.strokes(
        "0", folks[-1], np.random.default_rng(99)))
    heading = page.get_by_role("heading", name=re.compile("Your drawing: the network says"))
    expect(heading).to_be_visible()
    expect(heading).to_contain_text(re.compile(r"says (zero|one) \(\d+% sure\)"))
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, tmp_path, "03-classify-drawing")


def test_a_folder_of_class_folders_uploaded_on_the_data_page(page, app, data_dir, tmp_path):
    files = photo_files(5)
    files["coffee/notes.txt"] = b"not an image"
    source = write_folder(tmp_path / "kitchen", files)
    page.goto(f"{app.url}/data")
    expect(page.get_by_role("heading", level=1, name="Data")).to_be_visible()
    wait_until_idle(page)
    page.get_by_text("Your own images: add a zip or a folder").click()
    page.get_by_role("radiogroup", name="Upload").get_by_text("a folder of class folders").click()
    expect(page.get_by_role("radio", name="a folder of class folders")).to_be_checked()
    # The radio shows checked at once; the folder uploader comes with the rerun the click
    # caused (until it ends, the zip uploader is still on the page too).
    uploader = page.get_by_label("Folder of class folders (cats").get_by_test_id(
        "stFileUploaderDropzoneInput")
    expect(uploader).to_have_attribute("webkitdirectory", re.compile(".*"))
    wait_until_idle(page)
    expect(page.get_by_test_id("stFileUploaderDropzoneInput")).to_have_count(1)
    # The browser sends each file with its path inside the chosen folder.
    uploader.set_input_files(source)
    name = page.get_by_role("textbox", name="Dataset name")
    expect(name).to_have_value("kitchen")
    wait_until_idle(page)
    page.get_by_role("button", name="Add as a dataset").click()
    expect(page.get_by_text(re.compile(r"^Added kitchen: 15 images in 3 classes"))
           ).to_be_visible()
    # The browser sent each file with its path inside the folder: classes, and what was
    # skipped, are named by it.
    page.get_by_text("1 file skipped").click()
    expect(page.get_by_text("kitchen/coffee/notes.txt is not an image")).to_be_visible()
    wait_until_idle(page)
    assert_clean(page, app)
    shot(page, tmp_path, "04-data-folder-added")
    assert [m.name for m in own_datasets.list_own(data_dir)
            if m.name == "kitchen"] == ["kitchen"]
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value("kitchen")
