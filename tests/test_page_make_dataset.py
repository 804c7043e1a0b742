"""The Make a dataset page, run through the real app with AppTest: a draft made from named
classes, examples added by drawing (AppTest cannot draw: the drawing is put where the canvas
puts it, session state "make_drawing"), camera photos and uploads of real images, deleted,
built into a dataset and sent to Train with the drawings preset."""

import io
from pathlib import Path

import numpy as np
import pytest
import support
from streamlit.testing.v1 import AppTest
from PIL import Image, ImageDraw
from skimage import data as skdata

from app_pages import common
from cnn import classroom, dataset_drafts, datasets, own_datasets, runs
from cnn.dataset_drafts import Draft

PAGE = "app_pages/make_dataset.py"
# The page's session-state keys (a page script cannot be imported: importing runs it).
PICK, NEW = "make_pick", ""
NEW_NAME, NEW_CLASSES = "make_new_name", "make_new_classes"
ROUND, DRAWING = "make_round", "make_drawing"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("CNN_DATA_DIR", str(folder))
    return folder


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(pixels: np.ndarray, side: int = 120) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((side, side)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def canvas_drawing(kind: str, shift: int = 0) -> bytes:
    """A 280x280 RGBA PNG as the canvas sends it: white strokes on black."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    draw = ImageDraw.Draw(image)
    if kind == "circle":
        draw.ellipse([60 + shift, 60, 220 + shift, 220], outline="white", width=24)
    else:
        draw.line([(140 + shift, 40), (140 + shift, 240)], fill="white", width=24)
    return png(image)


def thumbnails(at) -> list:
    return [image for element in at.get("image") for image in element.proto.imgs]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def texts(at) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.warning])


def create(at, name: str, classes: str):
    at.text_input(key=NEW_NAME).set_value(name)
    at.text_area(key=NEW_CLASSES).set_value(classes)
    return at.button(key="FormSubmitter:make_new_form-Create").click().run()


def open_draft(data_dir, name="shapes", classes=("circle", "line")) -> tuple:
    at = support.open_page(PAGE)
    create(at, name, "\n".join(classes))
    assert not at.exception and not errors(at), errors(at)
    return at, Draft.open(data_dir, "local", name)


def draw(at, kind: str, shift: int = 0):
    """What a stroke on the canvas does (its PNG lands in session state), then Add."""
    at.session_state[DRAWING] = (at.session_state.get(ROUND, 0), canvas_drawing(kind, shift))
    at.run()  # the rerun the canvas causes
    at.button(key="make_add_drawing").click().run()
    assert not at.exception, at.exception
    return at


def test_a_new_draft_is_made_from_a_name_and_classes(data_dir):
    at = support.open_page(PAGE)
    assert at.selectbox(key=PICK).value == NEW
    create(at, "shapes", "circle\n  line  \n\n")
    assert not at.exception and not errors(at)
    assert at.selectbox(key=PICK).value == "shapes"
    assert dataset_drafts.list_drafts(data_dir, "local") == ["shapes"]
    assert Draft.open(data_dir, "local", "shapes").classes() == ["circle", "line"]
    assert "**circle** · 0 examples · :orange[5 more needed]" in texts(at)
    assert at.button(key="make_build").disabled  # not enough examples yet


@pytest.mark.parametrize("name, classes, words", [
    ("../up", "a\nb", "cannot be a dataset name"),
    ("solo", "only", "A draft needs 2 to 10 classes."),
    ("many", "\n".join(f"c{i}" for i in range(11)), "A draft needs 2 to 10 classes."),
    ("twins", "Cat\ncat", "There is already a class called 'cat'."),
    ("slash", "a/b\nc", "cannot contain /"),
])
def test_a_bad_draft_is_refused_in_one_line_and_nothing_is_made(data_dir, name, classes, words):
    at = create(support.open_page(PAGE), name, classes)
    assert not at.exception
    [error] = errors(at)
    assert words in error.replace("\\", "") and "\n" not in error
    assert dataset_drafts.list_drafts(data_dir, "local") == []


def test_drawings_are_saved_at_once_shown_and_deleted(data_dir):
    at, draft = open_draft(data_dir)
    assert at.get("segmented_control")[0].value == "circle"
    draw(at, "circle")
    draw(at, "circle", shift=10)
    assert [e.name for e in draft.examples("circle")] == ["1.png", "2.png"]
    saved = Image.open(draft.examples("circle")[0].path)
    assert saved.mode == "L" and saved.size == (256, 256)  # grey, at most 256 px
    assert DRAWING not in at.session_state  # the new canvas has nothing on it
    assert at.button(key="make_add_drawing").disabled  # a fresh, empty canvas
    assert "**circle** · 2 examples · :orange[3 more needed]" in texts(at)

    at.get("segmented_control")[0].set_value("line").run()
    draw(at, "line")
    assert draft.counts() == {"circle": 2, "line": 1}
    # A thumbnail per example, newest first, each with its delete button.
    assert len(thumbnails(at)) == 3
    at.button(key="make_del_circle_1.png").click().run()
    assert [e.name for e in draft.examples("circle")] == ["2.png"]
    # A second browser (a new session) sees the same draft.
    again = support.open_page(PAGE)
    assert again.selectbox(key=PICK).value == "shapes"
    assert "**circle** · 1 example · :orange[4 more needed]" in texts(again)


def test_camera_photos_and_uploads_are_added_and_bad_files_named(data_dir):
    at, draft = open_draft(data_dir, "things", ("cat", "coffee"))
    at.toggle(key="make_camera_on").set_value(True).run()
    at.camera_input(key="make_camera_0").set_value(
        ("photo.jpg", jpeg(skdata.chelsea()), "image/jpeg")).run()
    assert not at.exception
    assert draft.counts() == {"cat": 1, "coffee": 0}
    assert Image.open(draft.examples("cat")[0].path).mode == "RGB"
    assert at.camera_input(key="make_camera_1")  # a fresh camera for the next photo

    at.get("segmented_control")[0].set_value("coffee").run()
    uploader = at.file_uploader(key="make_upload_1")
    uploader.set_value([("a.jpg", jpeg(skdata.coffee()), "image/jpeg"),
                        ("b.png", png(Image.fromarray(skdata.coffee()[::4, ::4])), "image/png"),
                        ("**bad**.jpg", b"not an image", "image/jpeg")]).run()
    at.button(key="make_add_files").click().run()
    assert not at.exception
    assert draft.counts() == {"cat": 1, "coffee": 2}
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("2 of 3 added. \\*\\*bad\\*\\*.jpg is not an image")  # escaped
    assert at.file_uploader(key="make_upload_2").value == []  # a fresh uploader


def test_classes_are_added_and_removed(data_dir):
    at, draft = open_draft(data_dir)
    assert at.button(key="make_remove_class_circle").disabled  # a draft keeps 2 classes
    at.text_input(key="make_new_class").set_value("star ⭐")
    at.button(key="FormSubmitter:make_add_class_form-Add class").click().run()
    assert draft.classes() == ["circle", "line", "star ⭐"]
    assert at.get("segmented_control")[0].value == "star ⭐"
    at.button(key="make_remove_class_line").click().run()
    assert draft.classes() == ["circle", "star ⭐"]
    at.text_input(key="make_new_class").set_value("a:b")
    at.button(key="FormSubmitter:make_add_class_form-Add class").click().run()
    [error] = errors(at)
    assert "cannot contain :" in error


def test_user_given_names_are_escaped(data_dir):
    at, _draft = open_draft(data_dir, "evil", ("![x](evil.png)", "_it_ `code` $x$"))
    shown = texts(at)
    assert "**\\!\\[x\\](evil.png)** · 0 examples" in shown
    assert "**\\_it\\_ \\`code\\` \\$x\\$** · 0 examples" in shown
    # Labels render Markdown too (an image in a label would be fetched).
    escaped = "\\!\\[x\\](evil.png)"
    assert at.button(key="make_add_drawing").label == f"Add this drawing to {escaped}"
    assert at.get("segmented_control")[0].proto.options[0].content == escaped


def test_build_and_train_sends_the_dataset_with_the_drawings_preset_to_train(data_dir):
    at, draft = open_draft(data_dir)
    for i in range(6):
        draft.add_example("circle", canvas_drawing("circle", 5 * i))
        draft.add_example("line", canvas_drawing("line", 5 * i))
    at.run()
    assert not at.button(key="make_build").disabled
    at.button(key="make_build").click().run()
    assert not at.exception, at.exception
    info = datasets.get_info("shapes")
    assert info.own and info.class_names == ("circle", "line")
    assert info.image_shape == (64, 64, 1) and info.light_on_dark
    assert at.session_state[common.DATASET] == "shapes"
    # The Train page took the wish (common.WANTED_PRESET) and opened on the drawings preset.
    assert common.WANTED_PRESET not in at.session_state
    assert at.session_state["train_preset"] == "drawings"
    assert at.session_state["train_dataset"] == "shapes"
    assert at.session_state["train_augment_stroke"] is True
    assert next(t.value for t in at.title).endswith("Train")  # switched to the Train page

    # Built again after more examples: the same dataset is replaced, not refused.
    draft.add_example("line", canvas_drawing("line", 40))
    at.switch_page(PAGE).run()
    at.button(key="make_build").click().run()
    assert datasets.get_info("shapes").train_size + datasets.get_info("shapes").test_size == 13


def test_build_never_replaces_a_dataset_from_elsewhere(data_dir, tmp_path):
    other = tmp_path / "other"
    for cls in ("a", "b"):
        (other / cls).mkdir(parents=True)
        for i in range(5):
            (other / cls / f"{i}.png").write_bytes(canvas_drawing("line", 8 * i))
    own_datasets.add("shapes", other, data_dir)
    at, draft = open_draft(data_dir)
    for i in range(5):
        draft.add_example("circle", canvas_drawing("circle", i))
        draft.add_example("line", canvas_drawing("line", i))
    at.run()
    at.button(key="make_build").click().run()
    [error] = errors(at)
    assert "There is already a dataset called 'shapes'" in error
    assert datasets.get_info("shapes").class_names == ("a", "b")  # untouched
    at.text_input(key="make_dataset_name_local/shapes").set_value("mnist").run()
    at.button(key="make_build").click().run()
    assert "built-in dataset mnist" in errors(at)[0]


def open_as(query: dict) -> AppTest:
    at = AppTest.from_file(str(support.REPO / "streamlit_app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, at.exception
    return at


def test_in_a_classroom_students_see_only_their_own_drafts(data_dir, monkeypatch):
    monkeypatch.setenv(classroom.CLASSROOM_ENV, "1")
    root = runs.runs_dir()
    _, token = classroom.create(root)
    zoe, zoe_key = classroom.register(root, "Zoë")
    _, sam_key = classroom.register(root, "Sam")
    # Not joined yet: asked to join, nothing else.
    guest = open_as({})
    assert "Join the class first" in guest.info[0].value
    assert not guest.get("selectbox")
    # Zoë makes "mine"; Sam sees none, and makes his own "mine".
    at = open_as({"me": zoe_key})
    create(at, "mine", "a\nb")
    assert at.text_input(key=f"make_dataset_name_{zoe.id}/mine").value == "Zoe-mine"
    sam = open_as({"me": sam_key})
    assert sam.selectbox(key=PICK).value == NEW
    create(sam, "mine", "x\ny")
    assert Draft.open(data_dir, zoe.id, "mine").classes() == ["a", "b"]
    assert [d for d in (data_dir / "drafts").iterdir()] and \
        len(list((data_dir / "drafts").iterdir())) == 2
    # The teacher's drafts are the teacher's.
    teacher = open_as({"token": token})
    assert teacher.selectbox(key=PICK).value == NEW


def test_download_and_delete(data_dir):
    at, draft = open_draft(data_dir)
    [button] = at.get("download_button")
    assert button.proto.label == "Download as a zip"
    zipped = draft.to_zip_bytes()  # what the button serves (its data callable)
    assert zipped[:2] == b"PK"
    at.button(key="make_delete").click().run()
    assert not at.exception
    assert dataset_drafts.list_drafts(data_dir, "local") == []
    assert at.selectbox(key=PICK).value == NEW
