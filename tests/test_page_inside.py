"""The Inside page, run through the real app with AppTest: on a tiny finished digits run, from
its URL (good and bad), with the class picker, for a run trained before the page existed,
for an untrained colour network, and opened from Classify and from Evaluate.

What the page shows is checked against the core computed independently: the answer
against `cnn.inference.predict`, the heatmap picture against `Explainer.occlusion` (its own
forward pass), the filters' count against the model's weights.
"""

import json
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import support
from app_pages import charts, inside_parts
from cnn import checkpoints, datasets, explain, inference, runs, training
from cnn.models import make_model
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent
PAGE = "app_pages/inside.py"
LEGACY = REPO / "tests" / "data" / "legacy-run"
LEGACY_ID = "20261125-185151-digits-8513"
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


@pytest.fixture
def media(monkeypatch):
    """Every picture the page sends, by media file id (AppTest keeps none after a run)."""
    stored = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def keep(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        stored[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    return stored


def open_page(params: dict | None = None):
    """The Inside page, reached through the app's navigation, with URL query parameters."""
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    at.run()
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def headline(at) -> re.Match:
    [match] = [m for m in (HEADLINE.match(md.value) for md in at.markdown) if m]
    return match


def picture(at, media, caption_start: str) -> np.ndarray:
    """The pixels of the image whose caption starts with `caption_start`."""
    for element in at.get("image"):
        for image in element.proto.imgs:
            if image.caption.startswith(caption_start):
                file_id = Path(image.url).stem
                return np.asarray(Image.open(io.BytesIO(media[file_id])).convert("RGB"))
    raise AssertionError(f"no image captioned {caption_start!r}")


def expected_overlay(run, image: np.ndarray, class_index: int | None) -> np.ndarray:
    """The occlusion map for `class_index` as the page should draw it, from the core's
    own occlusion pass (not the `explain` call the page makes)."""
    explainer = explain.Explainer(checkpoints.load_model(run.model_path))
    heatmap = explainer.occlusion(image, class_index)
    return explain.overlay(image, heatmap, alpha=0.6,
                           factor=inside_parts.SIDE // max(image.shape[:2]))


def test_without_a_model_the_page_points_to_train():
    at = open_page()
    assert "No trained network yet" in at.info[0].value
    assert [(link.proto.label, link.proto.page) for link in at.get("page_link")] == [
        ("Go to Train", "train")]


def test_opens_on_a_test_image_and_shows_every_panel(run, media):
    at = open_page()
    assert at.selectbox(key="inside_run").value == run.id
    assert at.segmented_control(key="inside_source").value == "test"
    # The URL names what is shown, so the view can be shared.
    index = int(at.query_params["test"])
    assert at.query_params["run"] == run.id and "class" not in at.query_params
    data = datasets.load("digits")
    model = checkpoints.load_model(run.model_path)
    [prediction] = inference.predict(model, [data.x_test[index]], list("0123456789"))
    shown = headline(at)
    assert shown["title"] == f"Test image #{index}"
    assert shown["label"] == prediction.labels[0]
    assert f"Where it looked for “{prediction.labels[0]}”" in [
        image.caption[:len("Where it looked for “x”")] for element in at.get("image")
        for image in element.proto.imgs]
    np.testing.assert_array_equal(picture(at, media, "Where it looked"),
                                  expected_overlay(run, data.x_test[index], None))
    # Grad-CAM, HiResCAM and SmoothGrad, each with its honest caption.
    for method in inside_parts.FURTHER_VIEWS:
        caption = f"{explain.TITLES[method]}: {explain.CAPTIONS[method]}"
        picture(at, media, caption)
    # The layers: the fast preset's conv1-pool1-conv2-pool2, then the dense layers.
    assert [m.value for m in at.markdown if m.value.startswith("**")][:6] == [
        ("**Other ways to ask where it looked** — quicker estimates; compare them with the "
         "map above."), "**input**", "**conv1**", "**pool1**", "**conv2**", "**pool2**"]
    kernel = model.get_layer("conv1").get_weights()[0]
    first = picture(at, media, f"{kernel.shape[-1]} filters, each a grey pattern of 3×3")
    assert first.shape[1] == 8 * kernel.shape[1] * 16 + 7  # 8 a row, 16× enlarged, 1 px gaps
    # The model's own weights, on the layer's one scale (sent as PNG: no JPEG blur).
    np.testing.assert_array_equal(first, explain.filter_grid(explain.filters(model, "conv1"),
                                                             factor=16))
    assert len(at.get("vega_lite_chart")) == 2  # the top guesses and the architecture


def test_the_class_picker_explains_another_class(run, media):
    at = open_page()
    index = int(at.query_params["test"])
    image = datasets.load("digits").x_test[index]
    best = headline(at)["label"]
    other = next(d for d in range(10) if str(d) != best)
    at.selectbox(key="inside_class").set_value(other).run()
    assert not at.exception
    assert headline(at)["label"] == best  # the answer stays; the map changes
    assert at.query_params["class"] == str(other)
    np.testing.assert_array_equal(picture(at, media, f"Where it looked for “{other}”"),
                                  expected_overlay(run, image, other))
    assert any(f"less sure of “{other}”" in c.value or "counts for that class" in c.value
               for c in at.caption)


def test_a_link_opens_its_test_image_and_class(run):
    at = open_page({"run": run.id, "test": "17", "class": "3"})
    assert not at.warning
    assert headline(at)["title"] == "Test image #17"
    assert at.selectbox(key="inside_class").value == 3
    assert any(image.caption.startswith("Where it looked for “3”")
               for element in at.get("image") for image in element.proto.imgs)
    assert at.query_params == {"run": run.id, "test": "17", "class": "3"}


@pytest.mark.parametrize("params, problem", [
    ({"run": "no-such-run", "test": "3"}, "There is no trained network called “no-such-run”"),
    ({"test": "abc"}, "“abc” is not a test image number (0 to 359)"),
    ({"test": "360"}, "“360” is not a test image number (0 to 359)"),
    ({"class": "[zebra](http://x)"}, "has no class “\\[zebra\\](http://x)”"),
])
def test_bad_links_give_one_message_and_the_defaults(run, params, problem):
    at = open_page({"run": run.id, **params} if "run" not in params else params)
    assert not at.exception and not at.error
    [warning] = at.warning
    assert problem in warning.value
    assert at.selectbox(key="inside_run").value == run.id
    assert headline(at)["title"].startswith("Test image #")
    # The URL is rewritten to what is shown: a refresh does not repeat the message.
    assert at.query_params["run"] == run.id
    at.run()
    assert not at.warning


def test_a_run_trained_before_this_page_opens():
    root = runs.runs_dir()
    shutil.copytree(LEGACY, root / LEGACY_ID)
    at = open_page({"run": LEGACY_ID, "test": "0"})
    assert not at.exception and not at.error and not at.warning
    assert headline(at)["title"] == "Test image #0"
    assert any(m.value == "**conv1**" for m in at.markdown)


def untrained_colour_run(name: str, precision: str) -> runs.Run:
    """An untrained network of preset `name` for CIFAR-10, whose images are not on this
    computer: only uploads and drawings can be explained."""
    params = preset(name, dataset="cifar10", precision=precision)
    run = runs.create_run(params, start=False)
    checkpoints.save_model(make_model(params, (32, 32, 3), 10), run.model_path)
    return run


@pytest.mark.parametrize("name, precision", [
    ("tutorial", "float32"),  # "valid" padding
    ("efficient", "float32"),  # "same" padding, dropout
    ("strong", "mixed_bfloat16"),  # batch norm, flips and shifts, bfloat16
])
def test_an_upload_on_a_colour_network_of_every_preset(media, name, precision):
    run = untrained_colour_run(name, precision)
    at = open_page()
    assert at.selectbox(key="inside_run").value == run.id
    assert at.segmented_control(key="inside_source").value == "upload"
    assert "Pick, upload or draw an image" in at.info[0].value
    photo = Image.new("RGB", (64, 48), (30, 90, 200))
    ImageDraw.Draw(photo).ellipse((10, 10, 40, 40), fill=(250, 200, 0))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    at.file_uploader(key="inside_upload").set_value(
        [("sun *bold*.png", buffer.getvalue(), "image/png")]).run()
    assert not at.exception and not at.error
    assert headline(at)["title"] == "sun \\*bold\\*.png"  # a file name never becomes Markdown
    names = [m.value for m in at.markdown if m.value.startswith("**")]
    if name == "strong":  # batch norm: the ReLUs are shown, not the linear convs before them
        assert "**relu1**" in names and "**conv1**" not in names[:8]
    else:
        assert names[2:4] == ["**conv1**", "**pool1**"]
    filters = run.config.conv_blocks[0].filters
    picture(at, media, f"{filters} filters, each a colour pattern of 3×3")
    assert "test" not in at.query_params


def test_a_broken_upload_is_named(run):
    at = open_page()
    at.segmented_control(key="inside_source").set_value("upload").run()
    at.file_uploader(key="inside_upload").set_value(
        [("broken.png", b"\x89PNG\r\n\x1a\n" + b"no" * 20, "image/png")]).run()
    assert not at.exception
    [error] = at.error
    assert error.value.startswith("broken.png ")


# --- opened from the other pages -------------------------------------------------------------
def test_why_this_answer_on_a_classify_test_image(run):
    at = support.open_page("app_pages/classify.py", timeout=60)
    at.button(key="classify_random").click().run()
    title = next(m.value for m in at.markdown if m.value.startswith("#### Test image #"))
    index = int(re.match(r"#### Test image #(\d+)", title)[1])
    at.button(key="classify_why_test").click().run()
    assert not at.exception
    assert headline(at)["title"] == f"Test image #{index}"
    assert at.query_params == {"run": run.id, "test": str(index)}


def test_why_this_answer_on_a_classify_drawing(run):
    at = support.open_page("app_pages/classify.py", timeout=60)
    drawing = Image.new("L", (280, 280), 0)
    ImageDraw.Draw(drawing).line([(150, 30), (150, 250)], fill=255, width=30)
    buffer = io.BytesIO()
    drawing.save(buffer, format="PNG")
    at.session_state["classify_drawing"] = buffer.getvalue()
    at.run()
    at.button(key="classify_why_draw_0").click().run()
    assert not at.exception
    assert at.segmented_control(key="inside_source").value == "passed"
    said = headline(at)
    assert said["title"] == "Your drawing"
    # The very array Classify gave the network.
    prepared = inference.prepare_image(Image.open(io.BytesIO(buffer.getvalue())), (32, 32, 1),
                                       light_on_dark=True,
                                       framing=datasets.get_info("digits").framing)
    sent = at.session_state["inside_image"]["array"]
    np.testing.assert_array_equal(sent, prepared.array)
    model = checkpoints.load_model(run.model_path)
    assert said["label"] == inference.predict(model, [sent], list("0123456789"))[0].labels[0]
    assert at.query_params == {"run": run.id}


def test_why_did_it_say_on_an_evaluate_mistake(run):
    at = support.open_page("app_pages/evaluate.py", timeout=60)
    with np.load(run.predictions_path) as stored:
        y_true, y_pred, confidence = stored["y_true"], stored["y_pred"], stored["confidence"]
    wrong = np.flatnonzero(y_true != y_pred)
    first = int(wrong[np.argmax(confidence[wrong])])  # the gallery's first card
    button = at.button(key=f"evaluate_why_{first}")
    assert button.label == f"Why did it say {y_pred[first]}?"
    button.click().run()
    assert not at.exception
    said = headline(at)
    assert said["title"] == f"Test image #{first}"
    assert said["label"] == str(y_pred[first])
    assert f"wrong, it is {y_true[first]}" in said.string
    assert at.query_params == {"run": run.id, "test": str(first)}


# --- the Train page's live panel -------------------------------------------------------------
def snapshot_panel(path, class_names):
    from pathlib import Path

    from app_pages import inside_live

    inside_live.live_snapshot_panel(Path(path), class_names)


def test_the_live_panel_never_loads_tensorflow():
    """The Train page calls it every second: the web server must not load TensorFlow."""
    code = ("import sys; from app_pages import inside_live; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
                          check=False)
    assert proc.stdout.split()[-2:] == ["False", "False"], proc.stdout + proc.stderr


def test_the_live_snapshot_panel_shows_the_newest_snapshot(tmp_path, media):
    path = tmp_path / "inside.npz"
    at = AppTest.from_function(snapshot_panel, args=(str(path), list("0123456789")),
                               default_timeout=60).run()
    assert not at.exception
    assert "appear here as soon as training starts" in at.caption[0].value  # no file yet

    params = preset("fast", precision="float32")
    model = make_model(params, (32, 32, 1), 10)
    image = datasets.load("digits").x_test[0]
    before = explain.first_kernel(model)
    explain.write_snapshot(model, image, path, epoch=0, initial_kernel=before)
    at.run()
    assert at.markdown[0].value.startswith("**Inside the network before training.** It says **")
    now = -before  # "three epochs later": other filters
    model.get_layer("conv1").kernel.assign(now)
    explain.write_snapshot(model, image, path, epoch=3, initial_kernel=before)
    at.run()
    assert not at.exception
    assert at.markdown[0].value.startswith("**Inside the network after epoch 3.**")
    captions = [image.caption for element in at.get("image") for image in element.proto.imgs]
    assert captions[:3] == ["conv1's filters before training: random noise",
                            "conv1's filters after epoch 3: each a pattern it looks for",
                            "A test image"]
    # Each filter picture is the kernel it says: before, and now (one scale per picture).
    factor = max(4, 48 // 3)
    np.testing.assert_array_equal(
        picture(at, media, "conv1's filters before"),
        explain.filter_grid(explain.kernel_filters(before, "conv1", False), factor=factor))
    np.testing.assert_array_equal(
        picture(at, media, "conv1's filters after"),
        explain.filter_grid(explain.kernel_filters(now, "conv1", False), factor=factor))
    assert any(c.startswith("The image after the last block (conv2)") for c in captions)


def test_the_top_guesses_chart_holds_this_answer_in_its_order():
    labels = ["Ankle boot", 'say "cat"', "T-shirt/top", "ü", "5"]
    probabilities = [0.5, 0.2, 0.15, 0.1, 0.05]
    spec = charts.top_k(labels, probabilities)
    [data] = spec["datasets"].values()
    assert list(data["class"]) == labels and list(data["probability"]) == probabilities
    assert list(data["best"]) == [True, False, False, False, False]
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]
    assert all(layer["encoding"]["y"]["sort"] == labels for layer in spec["layer"])
    # A second answer with other classes reuses the template, never the first answer.
    other = charts.top_k(["a", "b"], [0.9, 0.1])
    assert list(other["datasets"]["guesses"]["class"]) == ["a", "b"]
    assert "Ankle boot" not in json.dumps({k: v for k, v in other.items() if k != "datasets"})

