"""The Data page's "your own images" part, run through the real app with AppTest: real photos
and digit drawings uploaded as a zip and as a folder, what was kept and skipped per class,
refusals as one readable line, own datasets listed and removed, damaged ones explained."""

import io
import zipfile
from pathlib import Path

import pytest
import support
from streamlit.testing.v1 import AppTest
from test_own_datasets import PHOTOS, digit_files, photo_files, write_folder, zip_of

from app_pages import common
from cnn import classroom, datasets, own_datasets, runs

PAGE = "app_pages/data.py"


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv("CNN_DATA_DIR", str(folder))
    return folder


def errors(at) -> list[str]:
    return [e.value for e in at.error]


def texts(at) -> str:
    return "\n".join(e.value for e in [*at.markdown, *at.caption, *at.info, *at.warning,
                                       *at.success])


def upload_zip(at, data: bytes, filename: str = "pets.zip", name: str | None = None):
    at.file_uploader(key="own_zip_0").set_value((filename, data, "application/zip")).run()
    if name is not None:
        at.text_input(key="own_name_0").set_value(name)
    return at.button(key="own_add").click().run()


def report_table(at):
    [frame] = [d.value for d in at.dataframe if "kept" in d.value.columns]
    return frame.set_index("class")


def test_a_zip_of_photos_becomes_a_dataset_with_a_report_per_class(data_dir):
    files = photo_files(6)
    files["cat/broken.jpg"] = b"not a photo"
    files["README.txt"] = b"hello"
    at = support.open_page(PAGE)
    assert at.button(key="own_add").disabled  # nothing uploaded yet
    at.file_uploader(key="own_zip_0").set_value(
        ("My Pets (2).zip", zip_of(files), "application/zip")).run()
    assert at.text_input(key="own_name_0").value == "My_Pets_2"  # from the file name
    at.button(key="own_add").click().run()
    assert not at.exception and not errors(at), errors(at)

    [success] = [s.value for s in at.success]
    assert success.startswith("Added **My\\_Pets\\_2**: 18 images in 3 classes, stored at "
                              "64×64 colour")
    table = report_table(at)
    assert table["kept"].to_dict() == {"cat": 6, "coffee": 6, "rocket": 6}
    assert table["skipped"].to_dict() == {"cat": 1, "coffee": 0, "rocket": 0}
    assert table["test"].sum() + table["training"].sum() == 18
    shown = texts(at)
    assert "cat/broken.jpg is not an image" in shown and "README.txt is not inside" in shown
    # The new dataset is chosen on the Data page (and for Train), its samples shown.
    assert at.selectbox(key="data_dataset").value == "My_Pets_2"
    assert at.session_state[common.DATASET] == "My_Pets_2"
    assert "Samples per class" in [s.value for s in at.subheader]
    assert datasets.get_info("My_Pets_2").image_shape == (64, 64, 3)
    # The uploader is empty again, and the report goes when dismissed.
    assert at.file_uploader(key="own_zip_1").value is None
    at.button(key="own_report_ok").click().run()
    assert not at.success


def test_a_folder_of_digit_drawings_with_chosen_settings(data_dir):
    at = support.open_page(PAGE)
    at.radio(key="own_kind").set_value("folder").run()
    # A folder upload: the browser names each file by its path inside the chosen folder.
    files = [(f"my_digits/{path}", data, "image/png") for path, data in digit_files(6).items()]
    at.file_uploader(key="own_folder_0").set_value(files).run()
    assert at.text_input(key="own_name_0").value == "my_digits"
    at.select_slider(key="own_size").set_value(16)
    at.radio(key="own_colour").set_value("grey")
    at.slider(key="own_split").set_value(0.3)
    at.button(key="own_add").click().run()
    assert not at.exception and not errors(at), errors(at)
    info = datasets.get_info("my_digits")
    assert info.image_shape == (16, 16, 1) and info.light_on_dark
    assert info.class_names == ("0", "1", "7") and info.test_size == 6  # 2 of 6 per class


@pytest.mark.parametrize("case, words", [
    ("zip_slip", "unsafe path '../evil.jpg'"),
    ("builtin", "is the name of the built-in dataset mnist"),
    ("bad_name", "cannot be a dataset name"),
    ("one_class", "only one class folder"),
    ("few", "at least 5 usable images"),
    ("not_zip", "is not a valid zip file"),
])
def test_a_refused_upload_is_one_line_and_writes_nothing(data_dir, case, words):
    photos = photo_files(5)
    data, name = zip_of(photos), None
    if case == "zip_slip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, content in photos.items():
                archive.writestr(path, content)
            archive.writestr("../evil.jpg", b"x")
        data = buffer.getvalue()
    elif case == "builtin":
        name = "MNIST"
    elif case == "bad_name":
        name = "../../up"
    elif case == "one_class":
        data = zip_of({k: v for k, v in photos.items() if k.startswith("cat/")})
    elif case == "few":
        data = zip_of(photo_files(3))
    elif case == "not_zip":
        data = b"PK\x03\x04 but not really a zip"
    at = upload_zip(support.open_page(PAGE), data, name=name)
    assert not at.exception
    [error] = errors(at)
    assert words in error.replace("\\", "") and "\n" not in error
    assert not (data_dir / "own").exists() or not any((data_dir / "own").iterdir())


def test_user_given_names_are_escaped_in_the_report(data_dir):
    cats = photo_files(5, {"cat": PHOTOS["cat"]}).values()
    files = {f"![x](evil.png)/{i}.jpg": data for i, data in enumerate(cats)}
    files.update({k: v for k, v in photo_files(5).items() if k.startswith("coffee/")})
    files["*bold*.txt"] = b"x"
    at = upload_zip(support.open_page(PAGE), zip_of(files), name="evil")
    assert not errors(at), errors(at)
    shown = texts(at)
    assert "\\*bold\\*.txt is not inside a class folder" in shown
    assert "![x](evil.png)" not in shown.replace("\\!\\[x\\](evil.png)", "")
    assert "\\!\\[x\\](evil.png)" in shown  # in the list of own datasets


def test_own_datasets_are_listed_and_removed(data_dir, tmp_path):
    own_datasets.add("pets", write_folder(tmp_path / "pets", photo_files(5)), data_dir)
    own_datasets.add("drawn", write_folder(tmp_path / "drawn", digit_files(5)), data_dir)
    at = support.open_page(PAGE)
    shown = texts(at)
    assert "**pets** · 3 classes (cat, coffee, rocket) · 12 training / 3 test images · " \
           "64×64 colour" in shown
    assert "**drawn** · 3 classes (0, 1, 7)" in shown
    at.selectbox(key="data_dataset").set_value("pets").run()
    assert at.session_state[common.DATASET] == "pets"
    at.button(key="own_remove_pets").click().run()
    assert not at.exception
    assert not (data_dir / "own" / "pets").exists()
    assert at.selectbox(key="data_dataset").value == datasets.DEFAULT_DATASET
    assert "pets" not in at.selectbox(key="data_dataset").options
    assert "**pets**" not in texts(at)


def test_a_damaged_own_dataset_shows_why_and_can_be_removed(data_dir, tmp_path):
    own_datasets.add("pets", write_folder(tmp_path / "pets", photo_files(5)), data_dir)
    (data_dir / "own" / "pets" / "images.npz").write_bytes(b"garbage")
    (data_dir / "own" / "pets" / "dataset.json").write_text("{")
    at = support.open_page(PAGE)
    [warning] = [w.value for w in at.warning if "damaged" in w.value]
    assert warning.startswith("**pets** is damaged: Your dataset 'pets' in ")
    assert "remove it and add it again" in warning
    assert "pets" not in at.selectbox(key="data_dataset").options
    at.button(key="own_remove_pets").click().run()
    assert not (data_dir / "own" / "pets").exists()
    assert not [w for w in at.warning if "damaged" in w.value]


def test_the_page_links_to_make_a_dataset(data_dir):
    at = support.open_page(PAGE)
    assert "make_dataset" in [link.proto.page for link in at.get("page_link")]


def test_in_a_classroom_only_the_teacher_removes_and_guests_do_not_add(
        data_dir, tmp_path, monkeypatch):
    own_datasets.add("pets", write_folder(tmp_path / "pets", photo_files(5)), data_dir)
    monkeypatch.setenv(classroom.CLASSROOM_ENV, "1")
    root = runs.runs_dir()
    _, token = classroom.create(root)
    _, key = classroom.register(root, "Sam")

    def open_as(query):
        at = AppTest.from_file(str(support.REPO / "streamlit_app.py"), default_timeout=120)
        at.query_params.update(query)
        at.run()
        at.switch_page(PAGE)
        return at.run()

    guest = open_as({})
    assert "Join the class on the Train page" in texts(guest)
    assert not [b for b in guest.button if b.key == "own_add"]
    student = open_as({"me": key})
    assert [b for b in student.button if b.key == "own_add"]  # may add
    assert not [b for b in student.button if b.key == "own_remove_pets"]
    assert "Only the teacher can remove datasets" in texts(student)
    teacher = open_as({"token": token})
    teacher.button(key="own_remove_pets").click().run()
    assert not (data_dir / "own" / "pets").exists()
