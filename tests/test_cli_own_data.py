"""`python -m cnn datasets add/remove`: own datasets from the command line, real images in,
one readable line for every refusal, the report as the --json last line."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from test_cli import assert_one_readable_line, cli, last_json
from test_own_datasets import digit_files, photo_files, write_folder, zip_of


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def own(data_dir: Path, *args, check_code=None):
    return cli("datasets", *args, "--data-dir", str(data_dir), check_code=check_code)


def test_a_folder_of_photos_is_added_listed_and_removed(tmp_path, data_dir):
    files = photo_files(6)
    files["cat/broken.jpg"] = b"not a jpeg at all"
    files["notes.txt"] = b"hello"
    source = write_folder(tmp_path / "photos", files)

    proc = own(data_dir, "add", "pets", str(source), "--json", check_code=0)
    report = last_json(proc)
    assert report["name"] == "pets"
    assert report["class_names"] == ["cat", "coffee", "rocket"]
    assert report["image_shape"] == [64, 64, 3]  # 72 px photos: the cap, colour
    assert report["kept"] == {"cat": 6, "coffee": 6, "rocket": 6}
    assert report["skipped_per_class"] == {"cat": 1, "coffee": 0, "rocket": 0}
    skipped = {s["path"]: s for s in report["skipped"]}
    assert set(skipped) == {"cat/broken.jpg", "notes.txt"}
    assert "not an image" in skipped["cat/broken.jpg"]["reason"]
    assert report["train_counts"] == {"cat": 5, "coffee": 5, "rocket": 5}
    assert Path(report["folder"]) == data_dir / "own" / "pets"

    listed = {d["name"]: d for d in last_json(own(data_dir, "--json", check_code=0))["datasets"]}
    assert list(listed)[:5] == ["cifar10", "fashion_mnist", "mnist", "cifar100", "digits"]
    assert listed["pets"]["own"] is True and listed["pets"]["on_disk"] is True
    assert listed["pets"]["image_shape"] == [64, 64, 3] and listed["pets"]["classes"] == 3
    assert listed["digits"]["own"] is False
    text = own(data_dir, check_code=0).stdout
    assert "pets" in text and "3 classes" in text

    removed = own(data_dir, "remove", "pets", "--json", check_code=0)
    assert last_json(removed) == {"name": "pets", "removed": True}
    assert not (data_dir / "own" / "pets").exists()
    assert "pets" not in own(data_dir, check_code=0).stdout


def test_a_zip_of_digits_with_chosen_settings_trains(tmp_path, data_dir):
    source = tmp_path / "digits.zip"
    source.write_bytes(zip_of(digit_files(8), prefix="my_digits/"))
    proc = own(data_dir, "add", "mine", str(source), "--image-size", "16", "--grayscale",
               "--test-split", "0.25", "--json", check_code=0)
    report = last_json(proc)
    assert report["image_shape"] == [16, 16, 1] and report["light_on_dark"] is True
    assert report["test_counts"] == {"0": 2, "1": 2, "7": 2}
    text = own(data_dir, "add", "mine_colour", str(source), "--colour", check_code=0).stdout
    assert text.startswith("added mine_colour: 24 images in 3 classes")
    assert "colour" in text.splitlines()[0]

    # Trainable like a built-in one, by name.
    run = last_json(cli("train", "--dataset", "mine_colour", "--data-dir", str(data_dir),
                        "--runs-dir", str(tmp_path / "runs"), "--epochs", "1",
                        "--batch-size", "4", "--json", check_code=0))
    assert run["status"] == "finished" and run["test_accuracy"] is not None


def _zip_with(member: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in photo_files(5).items():
            archive.writestr(name, data)
        archive.writestr(member, b"x")
    return buffer.getvalue()


@pytest.mark.parametrize("case, words", [
    ("missing", "does not exist"),
    ("builtin", "built-in dataset mnist"),
    ("bad_name", "cannot be a dataset name"),
    ("taken", "already a dataset of your own called 'pets'"),
    ("no_classes", "holds no class folders"),
    ("one_class", "only one class folder"),
    ("few_images", "at least 5 usable images"),
    ("zip_slip", "unsafe path"),
    ("not_a_zip", "neither a folder nor a zip file"),
    ("image_size", "image size must be a whole number of pixels from 8 to 128"),
    ("test_split", "test split must be a share from 0.05 to 0.5"),
    ("both_colours", "not allowed with argument --grayscale"),
    ("no_path", "required: name, path"),
])
def test_every_refusal_is_one_line_and_writes_nothing(tmp_path, data_dir, case, words):
    photos = write_folder(tmp_path / "photos", photo_files(5))
    own(data_dir, "add", "pets", str(photos), check_code=0)
    before = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*"))
    args = {
        "missing": ["new", str(tmp_path / "nowhere")],
        "builtin": ["MNIST", str(photos)],
        "bad_name": ["../escape", str(photos)],
        "taken": ["pets", str(photos)],
        "no_classes": ["new", str(photos / "cat")],
        "one_class": ["new", str(write_folder(tmp_path / "one", {
            k: v for k, v in photo_files(5).items() if k.startswith("cat/")}))],
        "few_images": ["new", str(write_folder(tmp_path / "few", photo_files(3)))],
        "not_a_zip": ["new", str(photos / "cat" / "cat_00.jpg")],
        "image_size": ["new", str(photos), "--image-size", "4"],
        "test_split": ["new", str(photos), "--test-split", "0.9"],
        "both_colours": ["new", str(photos), "--grayscale", "--colour"],
        "no_path": [],
    }.get(case)
    if case == "zip_slip":
        evil = tmp_path / "evil.zip"
        evil.write_bytes(_zip_with("../../outside.jpg"))
        args = ["new", str(evil)]
    proc = own(data_dir, "add", *args)
    assert_one_readable_line(proc)
    assert words in proc.stderr
    assert sorted(p.relative_to(data_dir) for p in data_dir.rglob("*")) == before
    assert not (tmp_path / "outside.jpg").exists()


@pytest.mark.parametrize("name, words", [
    ("nothing_here", "There is no dataset of your own called 'nothing_here'"),
    ("digits", "digits is a built-in dataset, which cannot be removed"),
    ("../up", "cannot be a dataset name"),
])
def test_removing_what_is_not_ones_own_is_refused(data_dir, name, words):
    proc = own(data_dir, "remove", name)
    assert_one_readable_line(proc)
    assert words in proc.stderr


def test_a_damaged_own_dataset_is_listed_as_damaged(tmp_path, data_dir):
    photos = write_folder(tmp_path / "photos", photo_files(5))
    own(data_dir, "add", "pets", str(photos), check_code=0)
    (data_dir / "own" / "pets" / "dataset.json").write_text("{not json")
    rows = {d["name"]: d for d in last_json(own(data_dir, "--json", check_code=0))["datasets"]}
    assert "damaged" in rows["pets"]["damaged"] and rows["pets"]["own"] is True
    assert "pets           damaged: " in own(data_dir, check_code=0).stdout
    proc = cli("train", "--dataset", "pets", "--data-dir", str(data_dir))
    assert_one_readable_line(proc)
    assert "There is no dataset called 'pets'" in proc.stderr
    own(data_dir, "remove", "pets", check_code=0)  # the way out
    assert "pets" not in json.dumps(last_json(own(data_dir, "--json", check_code=0)))
