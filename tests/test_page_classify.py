"""The Classify page, run through the real app with AppTest on a tiny finished digits run.

AppTest cannot draw on the canvas, so a drawing is put where the page keeps it
(session state "classify_drawing", PNG bytes), as the canvas does after each stroke.
"""

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

import support
from cnn import checkpoints, datasets, inference, runs, training
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent
PAGE = "app_pages/classify.py"
DIGITS = list("0123456789")
HEADLINE = re.compile(r"#### (?P<title>.+): the network says :orange\[\*\*(?P<label>.+?)\*\*\] "
                      r"\((?P<percent>\d+)% sure\)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    params = preset("fast", dataset="digits", train_size=128, epochs=2, batch_size=32,
                    precision="float32")
    run = runs.create_run(params, root=tmp_path_factory.mktemp("trained-runs"), start=False)
    assert training.execute(run, min_record_interval=0)["state"] == runs.FINISHED
    return run


@pytest.fixture
def run(trained):
    """The trained run, copied into this test's own runs folder."""
    root = runs.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained.path, root / trained.id)
    return runs.get_run(trained.id)


def open_page() -> AppTest:
    return support.open_page(PAGE, timeout=60)


def headlines(at) -> list[re.Match]:
    return [m for m in (HEADLINE.match(md.value) for md in at.markdown) if m]


def captions(at) -> list[str]:
    return [image.caption for element in at.get("image") for image in element.proto.imgs]


def digit_one(white_on_black: bool = True) -> bytes:
    """A 280x280 PNG of a '1', drawn as on the canvas."""
    background, ink = (0, 255) if white_on_black else (255, 0)
    image = Image.new("L", (280, 280), background)
    ImageDraw.Draw(image).line([(150, 30), (150, 250)], fill=ink, width=30)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def expected_label(run, data: bytes) -> str:
    """What cnn.inference itself answers for these bytes (the page must show the same)."""
    model = checkpoints.load_model(run.model_path)
    [result] = inference.classify_files(model, [("x", data)], (32, 32, 1), DIGITS,
                                        light_on_dark=True,
                                        framing=datasets.get_info("digits").framing)
    return result.prediction.labels[0]


def test_without_a_model_the_page_points_to_train():
    at = open_page()
    assert "No trained network yet" in at.info[0].value
    assert [(link.proto.label, link.proto.page) for link in at.get("page_link")] == [
        ("Go to Train", "train")]
    assert not at.get("file_uploader")


def test_random_test_image_shows_a_prediction_and_its_true_label(run):
    at = open_page()
    assert at.selectbox(key="classify_run").value == run.id
    assert not headlines(at)
    at.button(key="classify_random").click().run()
    assert not at.exception
    [headline] = headlines(at)
    index = int(re.match(r"Test image #(\d+) \(true class (\d)\)", headline["title"])[1])
    true_label = headline["title"][-2]
    assert true_label == str(datasets.load("digits").y_test[index])
    assert headline["label"] in DIGITS
    verdict = "right" if headline["label"] == true_label else f"wrong, it is {true_label}"
    assert verdict in headline.string
    assert "What the network sees: 32×32 pixels" in captions(at)
    assert len(at.get("vega_lite_chart")) == 1  # the top-k bars


def test_top_k_slider_sets_the_number_of_bars(run):
    at = open_page()
    at.slider(key="classify_top_k").set_value(3).run()
    at.button(key="classify_random").click().run()
    [chart] = at.get("vega_lite_chart")
    assert '"class"' in chart.proto.spec
    data = pa.ipc.open_stream(io.BytesIO(chart.proto.datasets[0].data.data)).read_pandas()
    assert len(data) == 3
    assert data["probability"].is_monotonic_decreasing
    assert json.loads(chart.proto.spec)["layer"][0]["mark"]["type"] == "bar"


@pytest.mark.parametrize("white_on_black", [True, False])
def test_a_drawing_is_classified_and_the_network_view_shown(run, white_on_black):
    at = open_page()
    drawing = digit_one(white_on_black)
    at.session_state["classify_drawing"] = drawing
    at.run()
    assert not at.exception
    [headline] = headlines(at)
    assert headline["title"] == "Your drawing"
    assert headline["label"] == expected_label(run, drawing)
    seen = "What the network sees: 32×32 pixels" + ("" if white_on_black
                                                    else ", colours inverted")
    assert seen in captions(at)
    assert "Your image" in captions(at)


def test_uploads_are_classified_and_a_broken_file_is_named(run):
    at = open_page()
    good = digit_one(white_on_black=False)
    at.file_uploader(key="classify_uploads").set_value([
        ("one.png", good, "image/png"),
        ("broken.png", b"\x89PNG\r\n\x1a\n" + b"not really" * 5, "image/png"),
        ("another.png", digit_one(), "image/png"),
    ]).run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("broken.png ")
    assert [h["title"] for h in headlines(at)] == ["one.png", "another.png"]
    assert all(h["label"] == expected_label(run, good) for h in headlines(at)[:1])
    assert len(at.get("vega_lite_chart")) == 2


def test_camera_is_off_until_asked_for(run):
    at = open_page()
    assert not at.camera_input
    at.toggle(key="classify_camera_on").set_value(True).run()
    assert len(at.camera_input) == 1
    photo = io.BytesIO()
    Image.fromarray(np.full((120, 160, 3), 255, np.uint8)).save(photo, format="JPEG")
    at.camera_input(key="classify_camera").set_value(("photo.jpg", photo.getvalue(),
                                                       "image/jpeg")).run()
    assert not at.exception
    assert [h["title"] for h in headlines(at)] == ["Camera photo"]
    # A blank white photo: nothing stands out, and the page says the answer is a guess.
    assert any("only guess" in w.value for w in at.warning)
