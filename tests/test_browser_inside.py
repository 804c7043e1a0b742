"""The Inside page in a real browser (tests/live_app.py: a Streamlit server in a subprocess,
driven by headless Chromium): a student draws a digit on Classify, presses "Why this
answer?" and sees where the network looked; asks "why not …?"; refreshes the page and keeps
the run and class; and from Evaluate's mistakes asks "Why did it say …?".

Run alone with `python -m pytest tests/test_browser_inside.py -q` (about a minute on two
idle cores). Screenshots of every step go to the test's tmp_path.
"""

from __future__ import annotations

import re

import live_app
import numpy as np
import pytest
from live_app import assert_clean, open_page, wait_until_idle

from cnn import runs, training
from cnn.presets import preset

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the `browser` fixture
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 60_000  # one step; generous: two CPU cores may be busy with something else
# Every <img> shown inside `el` has arrived (Streamlit fetches images after drawing).
IMAGES_LOADED_JS = """el => {
  const shown = [...el.querySelectorAll('img')].filter(i => i.getBoundingClientRect().width > 0);
  return shown.length > 0 && shown.every(i => i.complete && i.naturalWidth > 0);
}"""


@pytest.fixture(scope="module")
def app(browser, tmp_path_factory):
    """The app served with one tiny finished digits run in its runs folder."""
    with live_app.serve(tmp_path_factory.mktemp("live-app")) as served:
        params = preset("fast", dataset="digits", train_size=256, epochs=3, batch_size=32,
                        precision="float32")
        run = runs.create_run(params, root=served.runs_dir, start=False)
        assert training.execute(run, min_record_interval=0)["state"] == runs.FINISHED
        served.run = run
        yield served


def heatmap(page, looked_for: str):
    """The "where it looked" picture for a class, once its pixels have arrived."""
    image = page.get_by_test_id("stImage").filter(
        has_text=f"Where it looked for “{looked_for}”")
    expect(image).to_be_visible()
    page.wait_for_function(IMAGES_LOADED_JS, arg=image.element_handle())
    return image


def test_why_this_answer_from_a_drawing(page, app, tmp_path):
    # Classify: draw a "1" with the mouse.
    open_page(page, app, "Classify")
    page.get_by_role("tab", name="Draw").click()
    canvas = page.locator("canvas.upper-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    x, top, height = box["x"] + box["width"] / 2, box["y"], box["height"]
    page.mouse.move(x, top + 0.15 * height)
    page.mouse.down()
    page.mouse.move(x, top + 0.85 * height, steps=20)
    page.mouse.up()
    said = page.get_by_role("heading", name=re.compile("Your drawing: the network says"))
    expect(said).to_be_visible()
    answer = re.search(r"says (\d) \(", said.inner_text())[1]
    wait_until_idle(page)
    page.screenshot(path=str(tmp_path / "01-classify.png"))

    # "Why this answer?" opens the Inside page on that very drawing.
    page.get_by_role("button", name="Why this answer?").click()
    expect(page.get_by_role("heading", level=1, name="Inside the network")).to_be_visible()
    expect(page.get_by_role("heading", name=f"Your drawing: the network says {answer}")
           ).to_be_visible()
    looked = heatmap(page, answer)
    wait_until_idle(page)
    assert_clean(page, app)
    assert re.search(rf"/inside\?run={re.escape(app.run.id)}$", page.url), page.url
    looked.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "02-inside.png"))
    # The picture is the network's 32×32 input, each pixel a crisp 7×7 square.
    size = looked.locator("img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size == [224, 224]

    # "Why not …?": another class, another map; the URL says which.
    other = next(d for d in "0123456789" if d != answer)
    box = page.get_by_role("combobox", name="Where did it look for…")
    box.focus()
    box.press("ArrowDown")
    page.get_by_role("option", name=re.compile(rf"^{other} \(\d+%\)$")).click()
    heatmap(page, other)
    wait_until_idle(page)
    assert page.url.endswith(f"&class={other}"), page.url
    expect(page.get_by_role("heading", name=f"Your drawing: the network says {answer}")
           ).to_be_visible()  # the answer does not change, only the question

    # A refresh keeps the run and the class (the drawing was this session's: a test image
    # is shown instead).
    page.reload()
    expect(page.get_by_role("heading", name=re.compile(r"Test image #\d+: the network says"))
           ).to_be_visible()
    heatmap(page, other)
    wait_until_idle(page)
    assert_clean(page, app)
    for section in ("The layers, left to right", "The image flowing through the layers",
                    "What each filter looks for"):
        expect(page.get_by_role("heading", name=section)).to_be_visible()
    page.screenshot(path=str(tmp_path / "03-after-refresh.png"))


def test_why_did_it_say_from_an_evaluate_mistake(page, app, tmp_path):
    with np.load(app.run.predictions_path) as stored:
        y_true, y_pred = stored["y_true"], stored["y_pred"]
    open_page(page, app, "Evaluate")
    page.get_by_role("tab", name="Mistakes").click()
    button = page.get_by_role("button", name=re.compile(r"Why did it say \d\?")).first
    said = re.search(r"say (\d)\?", button.inner_text())[1]
    button.click()
    expect(page.get_by_role("heading", level=1, name="Inside the network")).to_be_visible()
    page.wait_for_url(re.compile(r"/inside\?run=.+&test=\d+$"))
    index = int(page.url.rsplit("=", 1)[1])
    assert y_true[index] != y_pred[index] and str(y_pred[index]) == said
    expect(page.get_by_role("heading", name=f"Test image #{index}: the network says {said}")
           ).to_be_visible()
    expect(page.get_by_text(f"wrong, it is {y_true[index]}")).to_be_visible()
    heatmap(page, said)
    wait_until_idle(page)
    assert_clean(page, app)
    assert f"/inside?run={app.run.id}&test={index}" in page.url
    page.screenshot(path=str(tmp_path / "04-from-evaluate.png"))
