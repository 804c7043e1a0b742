"""Datasets of one's own: folders and zips of real images in, uint8 arrays out; every refusal
writes nothing; drafts made in the browser round-trip through a zip and a build."""

import io
import json
import os
import re
import struct
import unicodedata
import zipfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data as skdata
from skimage.transform import resize as sk_resize

from cnn import dataset_drafts, own_datasets
from cnn.dataset_drafts import Draft
from cnn.errors import CnnError, DatasetError, ImageError
from cnn.own_datasets import MIN_IMAGES_PER_CLASS

PHOTOS = {"cat": skdata.chelsea, "coffee": skdata.coffee, "rocket": skdata.rocket}


# --- making real sources ---------------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(source, index: int, size=(96, 72)) -> Image.Image:
    """A different small photo for each index: a crop of a scikit-image photo, some flipped."""
    pixels = source()
    h, w = pixels.shape[:2]
    top, left = (index * 17) % (h // 3), (index * 29) % (w // 3)
    crop = Image.fromarray(pixels[top : top + 2 * h // 3, left : left + 2 * w // 3])
    if index % 2:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop.resize(size, Image.Resampling.LANCZOS)


def photo_files(per_class: int = 6, classes=PHOTOS) -> dict[str, bytes]:
    return {
        f"{name}/{name}_{i:02d}.jpg": encode(photo(source, i), quality=90)
        for name, source in classes.items()
        for i in range(per_class)
    }


def digit_files(per_class: int = 6, digits=(0, 1, 7), side: int = 24) -> dict[str, bytes]:
    """scikit-learn's 8x8 digits, white on black, enlarged to `side` and saved as PNG."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    files = {}
    for digit in digits:
        rows = np.flatnonzero(bunch.target == digit)[:per_class]
        for i, row in enumerate(rows):
            pixels = (bunch.images[row] * 255 / 16).astype(np.uint8)
            image = Image.fromarray(pixels).resize((side, side), Image.Resampling.NEAREST)
            files[f"{digit}/{i:02d}.png"] = encode(image, "PNG")
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def zip_of(files: dict[str, bytes], prefix: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


def snapshot(folder: Path) -> set[str]:
    """Every path under `folder`, hidden ones included (None when it does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


def refused(data_dir: Path, match: str, *args, **kwargs) -> DatasetError:
    """Assert that add(...) is refused with `match` in its one-sentence message and that the
    data folder is exactly as it was (no staging folder, no own/ folder made)."""
    before = snapshot(data_dir)
    with pytest.raises(DatasetError) as caught:
        own_datasets.add(*args, **kwargs)
    message = str(caught.value)
    assert match in message, message
    assert "\n" not in message and message.endswith((".", ")")), message
    assert snapshot(data_dir) == before
    return caught.value


# --- folders and zips of real photos ---------------------------------------------------------


def test_a_folder_of_photos_becomes_a_colour_dataset(tmp_path, data_dir):
    files = photo_files(per_class=6)
    source = write_folder(tmp_path / "pets", files)
    (source / "cat" / "notes.txt").write_text("not a picture")
    (source / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # junk an OS adds: ignored, not listed

    report = own_datasets.add("pets", source, data_dir)

    assert report.class_names == ["cat", "coffee", "rocket"]
    # The default side is the median shorter side (72), at most 64.
    assert report.image_shape == (64, 64, 3) and not report.light_on_dark
    assert report.kept == {"cat": 6, "coffee": 6, "rocket": 6}
    assert report.train_counts == {"cat": 5, "coffee": 5, "rocket": 5}
    assert report.test_counts == {"cat": 1, "coffee": 1, "rocket": 1}
    assert [s.message for s in report.skipped] == [
        "cat/notes.txt is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF expected)."
    ]
    assert report.skipped_per_class == {"cat": 1, "coffee": 0, "rocket": 0}
    assert report.folder == data_dir / "own" / "pets"
    assert sorted(os.listdir(data_dir / "own")) == ["pets"]  # no staging folder left
    assert sorted(os.listdir(report.folder)) == ["dataset.json", "images.npz"]

    x_train, y_train, x_test, y_test = own_datasets.load_arrays(report.folder)
    assert x_train.shape == (15, 64, 64, 3) and x_test.shape == (3, 64, 64, 3)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5, 5, 5] and sorted(y_test) == [0, 1, 2]

    # Oracle: every photo, centre-cropped and resized by scikit-image, is closest to a stored
    # image of its own class (LANCZOS vs Gaussian anti-aliasing: close, not equal).
    stored = np.concatenate([x_train, x_test]).astype(float)
    labels = np.concatenate([y_train, y_test])
    for name, data in files.items():
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)
        h, w = pixels.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        reference = sk_resize(pixels[top : top + side, left : left + side], (64, 64),
                              anti_aliasing=True)
        distance = np.abs(stored - reference).mean(axis=(1, 2, 3))
        best = int(np.argmin(distance))
        assert distance[best] < 6, (name, distance[best])
        assert report.class_names[labels[best]] == name.split("/")[0]

    record = json.loads((report.folder / "dataset.json").read_text())
    assert record["class_names"] == ["cat", "coffee", "rocket"]
    assert record["image_shape"] == [64, 64, 3] and record["light_on_dark"] is False
    assert record["train_counts"] == [5, 5, 5] and record["test_counts"] == [1, 1, 1]
    assert record["source"] == {"kind": "folder", "path": str(source.resolve()),
                                "name": str(source)}
    assert datetime.fromisoformat(record["created"]).tzinfo is not None
    assert record["skipped"] == [{"path": "cat/notes.txt", "reason": report.skipped[0].reason}]

    info = own_datasets.meta(report.folder)
    assert info.class_names == ("cat", "coffee", "rocket") and info.image_shape == (64, 64, 3)
    assert info.train_size == 15 and info.test_size == 3 and info.damaged is None
    assert [m.name for m in own_datasets.list_own(data_dir)] == ["pets"]


def test_a_zip_of_digit_drawings_is_grey_and_light_on_dark(data_dir):
    # One top folder holding the class folders, as zipping a folder makes it.
    upload = zip_of(digit_files(per_class=8), prefix="my digits/")

    report = own_datasets.add("my_digits", upload, data_dir, source_name="digits.zip")

    assert report.class_names == ["0", "1", "7"]
    assert report.image_shape == (24, 24, 1)  # the images' own size: nothing resampled
    assert report.light_on_dark  # white strokes on a black border, like MNIST
    x_train, _, x_test, _ = own_datasets.load_arrays(report.folder)
    assert x_train.shape[1:] == (24, 24, 1)
    # Stored exactly as drawn: the originals come back pixel for pixel.
    originals = {np.asarray(Image.open(io.BytesIO(d))).tobytes() for d in digit_files(8).values()}
    assert {image[..., 0].tobytes() for image in np.concatenate([x_train, x_test])} == originals
    record = json.loads((report.folder / "dataset.json").read_text())
    assert record["source"] == {"kind": "zip", "path": None, "name": "digits.zip"}
    assert record["border_luminance"] == 0


def test_image_size_and_channels_can_be_chosen(tmp_path, data_dir):
    photos = write_folder(tmp_path / "photos", photo_files(per_class=5))
    digits = write_folder(tmp_path / "digits", digit_files(per_class=5))

    grey = own_datasets.add("grey_photos", photos, data_dir, image_size=32, grayscale=True)
    assert grey.image_shape == (32, 32, 1) and not grey.light_on_dark  # bright borders
    colour = own_datasets.add("colour_digits", digits, data_dir, image_size=40, grayscale=False)
    assert colour.image_shape == (40, 40, 3) and not colour.light_on_dark  # only grey ones are
    x = own_datasets.load_arrays(colour.folder)[0]
    assert x.shape[1:] == (40, 40, 3)
    assert (x[..., 0] == x[..., 1]).all() and (x[..., 1] == x[..., 2]).all()

    for bad in (4, 500, 32.5, "32", True):
        refused(data_dir, "image size must be a whole number", "x", photos, data_dir,
                image_size=bad)
    for bad in (0, 0.9, -0.2, "0.2"):
        refused(data_dir, "test split must be a share from 0.05 to 0.5", "x", photos, data_dir,
                test_split=bad)


def test_every_format_and_mode_the_classify_page_reads(tmp_path, data_dir):
    chelsea = Image.fromarray(skdata.chelsea()).resize((90, 60))
    camera = skdata.camera()[::8, ::8]  # 64 x 64 grey
    # A phone photo stored sideways: raw pixels 80 wide, 40 high, top half white, with
    # Orientation 6 ("rotate 90 degrees clockwise to view"): upright, the white is on the right.
    sideways = np.zeros((40, 80, 3), np.uint8)
    sideways[:20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[10:40, 10:40] = (200, 30, 30, 255)  # a red square on a transparent background
    files = {
        "a/exif.jpg": encode(Image.fromarray(sideways), "JPEG", exif=exif, quality=95),
        "a/sixteen.png": encode(Image.fromarray(camera.astype(np.uint16) * 257), "PNG"),
        "a/palette.gif": encode(chelsea.quantize(64), "GIF"),
        "a/alpha.png": encode(Image.fromarray(rgba), "PNG"),
        "a/photo.webp": encode(chelsea, "WEBP"),
        "b/photo.bmp": encode(chelsea, "BMP"),
        "b/photo.tif": encode(chelsea, "TIFF"),
        "b/cmyk.jpg": encode(chelsea.convert("CMYK"), "JPEG"),
        "b/grey.png": encode(Image.fromarray(camera), "PNG"),
        "b/deep/nested.png": encode(chelsea, "PNG"),  # inside a sub-folder of its class
        # what is skipped, and why
        "a/broken.jpg": encode(chelsea)[:300],
        "a/drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg"></svg>',
        "b/empty.png": b"",
        "b/readme.txt": b"hello",
        "b/inner.zip": zip_of({"x.png": encode(chelsea, "PNG")}),
        "loose.png": encode(chelsea, "PNG"),  # not inside any class folder
    }
    source = write_folder(tmp_path / "mixed", files)

    report = own_datasets.add("mixed", source, data_dir, image_size=16)

    assert report.kept == {"a": 5, "b": 5}
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {
        "a/broken.jpg": "is damaged or incomplete and cannot be read.",
        "a/drawing.svg": "is an SVG drawing, which cannot be read; export it as PNG first.",
        "b/empty.png": "is empty (0 bytes).",
        "b/readme.txt": "is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF expected).",
        "b/inner.zip": "is a zip file; archives inside are not opened.",
        "loose.png": "is not inside a class folder.",
    }
    assert report.skipped_per_class == {"a": 2, "b": 3}
    assert report.image_shape == (16, 16, 3)  # some are colour

    # The EXIF-rotated photo is stored upright: bright on the right, dark on the left.
    x_train, _, x_test, _ = own_datasets.load_arrays(report.folder)
    images = np.concatenate([x_train, x_test]).astype(float)
    bright_right = images[:, :, 10:].mean(axis=(1, 2, 3)) - images[:, :, :6].mean(axis=(1, 2, 3))
    assert bright_right.max() > 200
    # The 16-bit camera is scaled, not clipped: it matches the 8-bit camera.
    grey = images[(images.std(axis=3).max(axis=(1, 2)) < 1) & (bright_right < 200)]
    assert len(grey) == 2 and np.abs(grey[0] - grey[1]).mean() < 2


def test_what_a_zip_holds_besides_images_is_skipped(data_dir):
    files = photo_files(per_class=5)
    files["cat/more.zip"] = zip_of({"x/1.jpg": files["cat/cat_00.jpg"]})
    files["__MACOSX/cat/._cat_00.jpg"] = b"\0\5\26\7 resource fork"  # macOS junk: ignored
    files["rocket/.hidden.jpg"] = files["cat/cat_00.jpg"]  # hidden: ignored, as in a folder
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("coffee/link.jpg")
        link.external_attr = (0o120777 << 16)  # a symbolic link to /etc/passwd
        archive.writestr(link, "/etc/passwd")

    report = own_datasets.add("zipped", buffer.getvalue(), data_dir, image_size=8)

    assert report.kept == {"cat": 5, "coffee": 5, "rocket": 5}
    assert {s.message for s in report.skipped} == {
        "cat/more.zip is an archive inside the zip; archives inside are not opened.",
        "coffee/link.jpg is a link, which is not followed.",
    }


def test_unicode_class_names_round_trip(tmp_path, data_dir):
    decomposed = unicodedata.normalize("NFD", "café")  # as macOS writes folder names
    files = {f"{decomposed}/{i}.png": encode(photo(skdata.coffee, i), "PNG") for i in range(5)}
    files.update({f"猫/{i}.png": encode(photo(skdata.chelsea, i), "PNG") for i in range(5)})
    files.update({f"Ölfarbe 🎨/{i}.png": encode(photo(skdata.rocket, i), "PNG") for i in range(5)})

    from_folder = own_datasets.add("unicode_folder", write_folder(tmp_path / "u", files), data_dir)
    from_zip = own_datasets.add("unicode_zip", zip_of(files), data_dir)

    expected = sorted(["café", "猫", "Ölfarbe 🎨"])
    assert from_folder.class_names == from_zip.class_names == expected
    assert unicodedata.is_normalized("NFC", from_folder.class_names[0])
    for report in (from_folder, from_zip):
        assert own_datasets.meta(report.folder).class_names == tuple(expected)
        assert report.kept == {name: 5 for name in expected}


# --- the stratified test split ---------------------------------------------------------------


def test_the_test_split_is_stratified_and_seeded(tmp_path, data_dir):
    sizes = {"cat": 10, "coffee": 20, "rocket": 7}
    files = {}
    for name, count in sizes.items():
        files.update({k: v for k, v in photo_files(count, {name: PHOTOS[name]}).items()})
    source = write_folder(tmp_path / "unequal", files)

    first = own_datasets.add("split_a", source, data_dir, image_size=8, test_split=0.2, seed=1)
    again = own_datasets.add("split_b", source, data_dir, image_size=8, test_split=0.2, seed=1)
    other = own_datasets.add("split_c", source, data_dir, image_size=8, test_split=0.2, seed=2)
    half = own_datasets.add("split_d", source, data_dir, image_size=8, test_split=0.5, seed=1)

    # round(0.2 x n) of each class: 2 of 10, 4 of 20, 1 of 7 (1.4); half: 5, 10, 4 (3.5 up).
    assert first.test_counts == {"cat": 2, "coffee": 4, "rocket": 1}
    assert first.train_counts == {"cat": 8, "coffee": 16, "rocket": 6}
    assert half.test_counts == {"cat": 5, "coffee": 10, "rocket": 4}
    a, b, c = (own_datasets.load_arrays(r.folder) for r in (first, again, other))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # the same seed, the same split
    assert not np.array_equal(a[2], c[2])  # another seed, another test set
    assert np.bincount(c[3]).tolist() == [2, 4, 1]  # ... in the same proportions
    # Train and test never share an image; together they are every image once.
    rows = {img.tobytes() for img in np.concatenate([a[0], a[2]])}
    assert len(rows) == len(a[0]) + len(a[2]) == 37


def test_stratified_test_mask_keeps_one_of_each_class_on_each_side():
    labels = np.repeat(np.arange(4), [5, 6, 50, 2])
    mask = own_datasets.stratified_test_mask(labels, 4, 0.05, seed=0)
    assert np.bincount(labels[mask], minlength=4).tolist() == [1, 1, 3, 1]  # 0.25 -> 1 at least
    mask = own_datasets.stratified_test_mask(labels, 4, 0.5, seed=0)
    assert np.bincount(labels[~mask], minlength=4).tolist() == [2, 3, 25, 1]  # 1 left to train


# --- refusals: one sentence, nothing written ---------------------------------------------------


@pytest.fixture
def small_photos() -> dict[str, bytes]:
    return photo_files(per_class=5)


@pytest.fixture
def existing(data_dir, tmp_path, small_photos) -> Path:
    """A data folder that already holds one own dataset, so 'unchanged' means something."""
    own_datasets.add("existing", write_folder(tmp_path / "first", small_photos), data_dir,
                     image_size=8)
    return data_dir


@pytest.mark.parametrize("member", [
    "../evil.png",
    "cat/../../evil.png",
    "/etc/evil.png",
    "C:/Windows/evil.png",
    "c:evil.png",
    "..\\..\\evil.png",
    "cat\\..\\..\\evil.png",
])
def test_zip_slip_is_refused(existing, small_photos, member):
    files = dict(small_photos)
    files[member] = files["cat/cat_00.jpg"]
    refused(existing, "contains the unsafe path", "slip", zip_of(files), existing)
    assert not (existing.parent / "evil.png").exists()


def test_a_zip_bomb_is_refused_by_its_declared_size(existing, monkeypatch):
    monkeypatch.setattr(own_datasets, "MAX_ZIP_BYTES", 2_000_000)
    files = photo_files(per_class=5)
    files["cat/bomb.png"] = b"\0" * 3_000_000  # deflates to 3 kB
    bomb = zip_of(files)
    assert len(bomb) < 100_000
    refused(existing, "looks like a zip bomb", "bomb", bomb, existing)


def test_a_zip_bomb_is_refused_by_the_bytes_read_when_its_sizes_lie(existing, monkeypatch):
    # Each member claims a tenth of its real size, and the total claimed passes the check:
    # counting the bytes actually unpacked is what stops it.
    monkeypatch.setattr(own_datasets, "MAX_ZIP_BYTES", 2_000_000)
    monkeypatch.setattr(own_datasets, "MAX_FILE_BYTES", 10_000_000)
    files = {f"{c}/{i}.bmp": b"BM" + b"\0" * 700_000 for c in ("a", "b") for i in range(5)}
    data = bytearray(zip_of(files))
    at = 0
    while (at := data.find(b"PK\x01\x02", at)) >= 0:  # central directory: uncompressed size
        real = struct.unpack_from("<I", data, at + 24)[0]
        struct.pack_into("<I", data, at + 24, real // 10)
        at += 4
    assert sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()) < 2e6
    read = []
    real_read = own_datasets._Scan._read_member

    def spy(scan, entry):
        try:
            return real_read(scan, entry)
        finally:
            read.append(scan.bytes_read)

    monkeypatch.setattr(own_datasets._Scan, "_read_member", spy)
    before = snapshot(existing)
    with pytest.raises(DatasetError) as caught:
        own_datasets.add("liar", bytes(data), existing)
    assert snapshot(existing) == before
    # zipfile stops at the declared size and then fails the CRC check, so every member is
    # damaged; never more is unpacked than claimed, and never more than the cap.
    assert str(caught.value).startswith("No usable images were found in the uploaded zip (10 "
                                        "files skipped, e.g. a/0.bmp is damaged inside the zip")
    assert len(read) == 10 and max(read) <= 2_000_000


def test_too_many_files_are_refused(existing, monkeypatch):
    monkeypatch.setattr(own_datasets, "MAX_FILES", 12)
    files = photo_files(per_class=5)  # 15 files
    refused(existing, "The uploaded zip holds more than 12 files, the most a dataset may have",
            "many",
            zip_of(files), existing)


def test_too_many_files_in_a_folder_are_refused(existing, tmp_path, monkeypatch):
    monkeypatch.setattr(own_datasets, "MAX_FILES", 12)
    source = write_folder(tmp_path / "many", photo_files(per_class=5))
    refused(existing, "many holds more than 12 files, the most", "many", source, existing)


def test_fewer_than_two_classes_are_refused(existing, tmp_path):
    only_cats = {k: v for k, v in photo_files(per_class=6).items() if k.startswith("cat/")}
    refused(existing, "holds only one class folder ('cat'); a dataset needs at least 2",
            "cats", write_folder(tmp_path / "cats", only_cats), existing)
    refused(existing, "holds no class folders", "flat",
            zip_of({k.split("/")[1]: v for k, v in only_cats.items()}), existing)


def test_a_class_with_too_few_images_is_refused(existing, tmp_path):
    files = photo_files(per_class=6)
    for i in range(3, 6):
        del files[f"rocket/rocket_{i:02d}.jpg"]
    files["rocket/broken.jpg"] = b"\xff\xd8\xff\xe0 not really"  # skipped, so not counted
    error = refused(existing, f"Every class needs at least {MIN_IMAGES_PER_CLASS} usable "
                    "images, and 'rocket' has 3", "few", write_folder(tmp_path / "few", files),
                    existing)
    assert "remove that class" in str(error)


def test_no_images_at_all_is_refused(existing):
    files = {"a/notes.txt": b"hello", "b/list.csv": b"1,2,3", "b/c.png": b"\x89PNG broken"}
    refused(existing, "No usable images were found in the uploaded zip (3 files skipped",
            "none", zip_of(files), existing)


@pytest.mark.parametrize("name, match", [
    ("", "cannot be a dataset name"),
    ("my pets", "cannot be a dataset name"),
    ("../pets", "cannot be a dataset name"),
    (".hidden", "cannot be a dataset name"),
    ("-rf", "cannot be a dataset name"),
    ("a" * 41, "cannot be a dataset name"),
    ("pets/cats", "cannot be a dataset name"),
    ("café", "cannot be a dataset name"),
    (None, "cannot be a dataset name"),
    ("mnist", "is the name of the built-in dataset mnist"),
    ("CIFAR10", "is the name of the built-in dataset cifar10"),
    ("fashion-mnist", "is the name of the built-in dataset fashion_mnist"),
    ("existing", "already a dataset of your own called 'existing'"),
    ("EXISTING", "already a dataset of your own called 'existing'"),
])
def test_bad_or_taken_names_are_refused(existing, tmp_path, small_photos, name, match):
    source = write_folder(tmp_path / "src", small_photos)
    refused(existing, match, name, source, existing)


def test_replace_swaps_a_dataset_whole(existing, tmp_path):
    source = write_folder(tmp_path / "digits", digit_files(per_class=5))
    report = own_datasets.add("existing", source, existing, replace=True)
    assert report.class_names == ["0", "1", "7"]
    assert own_datasets.meta(existing / "own" / "existing").class_names == ("0", "1", "7")
    assert sorted(os.listdir(existing / "own")) == ["existing"]


@pytest.mark.parametrize("kind", ["missing", "text", "fake_zip", "truncated_zip"])
def test_a_source_that_is_neither_a_folder_nor_a_zip_is_refused(existing, tmp_path, kind):
    path = tmp_path / {"missing": "nowhere", "text": "notes.txt", "fake_zip": "data.zip",
                       "truncated_zip": "cut.zip"}[kind]
    if kind == "text":
        path.write_text("hello")
    elif kind == "fake_zip":
        path.write_bytes(b"PK not really a zip")
    elif kind == "truncated_zip":
        path.write_bytes(zip_of(photo_files(5))[:5000])
    match = {"missing": "does not exist.", "text": "is neither a folder nor a zip file.",
             "fake_zip": "is not a valid zip file", "truncated_zip": "is not a valid zip file"}
    refused(existing, match[kind], "bad", path, existing)


def test_links_out_of_the_folder_are_not_followed(existing, tmp_path, small_photos):
    source = write_folder(tmp_path / "linked", small_photos)
    secret = write_folder(tmp_path / "secret", {"x/private.jpg": small_photos["cat/cat_00.jpg"]})
    (source / "cat" / "leak.jpg").symlink_to(secret / "x" / "private.jpg")
    (source / "leaked_class").symlink_to(secret / "x")
    (source / "coffee" / "inside.jpg").symlink_to(source / "rocket" / "rocket_00.jpg")

    report = own_datasets.add("linked", source, existing)

    assert report.class_names == ["cat", "coffee", "rocket"]
    assert report.kept == {"cat": 5, "coffee": 6, "rocket": 5}  # a link inside is fine
    reasons = {s.path: s.reason for s in report.skipped}
    assert reasons == {
        "cat/leak.jpg": "is a link to outside the folder, which is not followed.",
        "leaked_class": "is a link to outside the folder, which is not followed.",
    }


def test_a_failed_write_leaves_nothing_behind(existing, tmp_path, small_photos, monkeypatch):
    def full_disk(path, arrays):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(own_datasets, "_write_arrays", full_disk)
    before = snapshot(existing)
    with pytest.raises(CnnError, match="The disk is full"):
        own_datasets.add("full", write_folder(tmp_path / "s", small_photos), existing)
    assert snapshot(existing) == before

    fresh = tmp_path / "fresh-data"
    with pytest.raises(CnnError, match="The disk is full"):
        own_datasets.add("full", tmp_path / "s", fresh)
    assert not (fresh / "own").exists()


# --- listing, loading, removing ----------------------------------------------------------------


def test_damaged_datasets_are_listed_as_damaged_and_refuse_to_load(existing, tmp_path):
    source = write_folder(tmp_path / "d", digit_files(per_class=5))
    for name in ("bad_json", "bad_npz", "wrong_counts"):
        own_datasets.add(name, source, existing, image_size=8)
    own = existing / "own"
    (own / "bad_json" / "dataset.json").write_text("{not json")
    (own / "bad_npz" / "images.npz").write_bytes(b"PK\x03\x04 garbage")
    record = json.loads((own / "wrong_counts" / "dataset.json").read_text())
    record["train_counts"][0] += 1
    (own / "wrong_counts" / "dataset.json").write_text(json.dumps(record))
    (own / "stray_file").write_text("not a dataset")

    listed = {m.name: m for m in own_datasets.list_own(existing)}
    assert sorted(listed) == ["bad_json", "bad_npz", "existing", "wrong_counts"]
    assert listed["bad_json"].damaged.startswith("Your dataset 'bad_json' in ")
    assert "is damaged (dataset.json is damaged (not valid JSON" in listed["bad_json"].damaged
    assert listed["bad_npz"].damaged is None  # only loading reads the arrays
    assert listed["existing"].damaged is None

    with pytest.raises(DatasetError, match="'bad_npz' .* is damaged .*remove it and add it"):
        own_datasets.load_arrays(own / "bad_npz")
    with pytest.raises(DatasetError, match="does not hold the images per class"):
        own_datasets.load_arrays(own / "wrong_counts")
    with pytest.raises(DatasetError, match="dataset.json is missing"):
        own_datasets.meta(tmp_path)
    assert own_datasets.list_own(tmp_path / "nothing-here") == []


def test_registry_records(existing, tmp_path):
    other = tmp_path / "other-data"
    digits = own_datasets.add("digits_mine", write_folder(tmp_path / "d", digit_files(5)), other)
    own_datasets.add("existing", write_folder(tmp_path / "e", digit_files(5)), other)
    (existing / "own" / "broken").mkdir()

    records = {r.name: r for r in own_datasets.records([existing, other])}
    assert sorted(records) == ["digits_mine", "existing"]  # the damaged one is left out
    first = records["existing"]  # two folders, one name: the first folder's
    assert first.class_names == ("cat", "coffee", "rocket") and first.own
    assert first.image_shape == (8, 8, 3) and not first.light_on_dark and first.mirror_safe
    assert (first.train_size, first.test_size) == (12, 3)
    mine = records["digits_mine"]
    assert mine.light_on_dark and mine.framing is None and not mine.mirror_safe
    found = mine.layouts[0].find(other)
    assert found == digits.folder
    arrays, names = mine.read(found)
    assert names is None and arrays[0].shape == (12, 24, 24, 1)


def test_remove(existing):
    with pytest.raises(DatasetError, match="mnist is a built-in dataset, which cannot be removed"):
        own_datasets.remove("mnist", existing)
    with pytest.raises(DatasetError, match="no dataset of your own called 'ghost'"):
        own_datasets.remove("ghost", existing)
    with pytest.raises(DatasetError, match="cannot be a dataset name"):
        own_datasets.remove("../existing", existing)
    assert own_datasets.locate("existing", existing) is not None
    own_datasets.remove("existing", existing)
    assert own_datasets.locate("existing", existing) is None
    assert os.listdir(existing / "own") == []


def test_progress_is_reported_per_file(tmp_path, data_dir, small_photos):
    calls = []
    own_datasets.add("p", write_folder(tmp_path / "p", small_photos), data_dir, image_size=8,
                     progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 15) for i in range(16)]


# --- drafts made in the browser ----------------------------------------------------------------


def drawing(kind: str, jitter: int) -> Image.Image:
    """A canvas drawing (280 x 280 RGBA, white strokes on black, as the canvas gives it)."""
    image = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    pen = ImageDraw.Draw(image)
    if kind == "circle":
        pen.ellipse((60 + jitter, 50, 220 - jitter, 230 + jitter), outline="white", width=18)
    else:
        pen.line((140 + jitter, 40, 140 - jitter, 240), fill="white", width=18)
    return image


def test_a_draft_made_in_the_browser_builds_a_dataset(data_dir):
    draft = Draft.create(data_dir, "ann", "shapes", ["Kreis ⭕", "line"])
    assert dataset_drafts.list_drafts(data_dir, "ann") == ["shapes"]
    assert draft.counts() == {"Kreis ⭕": 0, "line": 0}

    for i in range(6):  # drawings as PIL images, as arrays, and as uploaded PNG bytes
        draft.add_example("Kreis ⭕", drawing("circle", i * 4))
        draft.add_example("line", np.asarray(drawing("line", i * 3)) if i % 2
                          else encode(drawing("line", i * 3), "PNG"))
    bad = draft.add_example("line", drawing("circle", 0))  # a mistake...
    assert bad.name == "7.png"
    draft.delete_example("line", bad)  # ...deleted
    assert draft.counts() == {"Kreis ⭕": 6, "line": 6}

    # On disk as it was made: small grey PNGs, numbered, in class folders; a second browser
    # (a fresh object) sees the same.
    again = Draft.open(data_dir, "ann", "shapes")
    first = again.examples("Kreis ⭕")[0]
    assert first.path == data_dir / "drafts" / "ann" / "shapes" / "Kreis ⭕" / "1.png"
    with Image.open(first.path) as stored:
        assert stored.format == "PNG" and stored.mode == "L" and stored.size == (256, 256)
    assert [e.name for e in again.examples("line")] == [f"{i}.png" for i in range(1, 7)]

    # The zip is the same folder-of-classes layout, and `add` takes it back.
    from_zip = own_datasets.add("shapes_zip", draft.to_zip_bytes(), data_dir)
    built = draft.build(data_dir, image_size=28)
    assert built.name == "shapes" and built.class_names == ["Kreis ⭕", "line"]
    assert built.image_shape == (28, 28, 1) and built.light_on_dark
    assert from_zip.class_names == built.class_names and from_zip.light_on_dark
    x_train, y_train, x_test, y_test = own_datasets.load_arrays(built.folder)
    assert len(x_train) + len(x_test) == 12 and np.bincount(y_test).tolist() == [1, 1]
    # A circle has a hole in the middle, a line is solid there: the labels fit the pictures.
    middle = np.concatenate([x_train, x_test])[:, 12:16, 12:16, 0].mean(axis=(1, 2))
    labels = np.concatenate([y_train, y_test])
    assert middle[labels == 0].max() < middle[labels == 1].min()


def test_two_browsers_adding_at_once_never_overwrite_an_example(data_dir, monkeypatch):
    draft = Draft.create(data_dir, "ann", "race", ["a", "b"])
    other_browser = Draft.open(data_dir, "ann", "race")
    first = other_browser.add_example("a", drawing("line", 0))
    # This browser looked before the other's example landed: it also picks number 1.
    monkeypatch.setattr(Draft, "examples", lambda self, class_name: [])
    second = draft.add_example("a", drawing("circle", 0))
    monkeypatch.undo()
    assert (first.name, second.name) == ("1.png", "2.png")
    with Image.open(first.path) as one, Image.open(second.path) as two:
        # 256 px now: the line crosses the middle, the circle's middle is empty
        assert np.asarray(one)[128, 128] == 255 and np.asarray(two)[128, 128] == 0
    assert sorted(p.name for p in first.path.parent.iterdir()) == ["1.png", "2.png"]  # no temp


def test_drafts_of_different_owners_are_apart(data_dir):
    ann = Draft.create(data_dir, "ann", "pets", ["cat", "dog"])
    bob = Draft.create(data_dir, "bob", "pets", ["cat", "dog"])
    ann.add_example("cat", photo(skdata.chelsea, 0))
    assert ann.counts() == {"cat": 1, "dog": 0} and bob.counts() == {"cat": 0, "dog": 0}
    ann.delete()
    assert dataset_drafts.list_drafts(data_dir, "ann") == []
    assert dataset_drafts.list_drafts(data_dir, "bob") == ["pets"]
    with pytest.raises(DatasetError, match="drafts folder"):
        Draft.create(data_dir, "../bob", "pets", ["cat", "dog"])


def test_draft_classes_are_checked_and_edited(data_dir):
    for names, match in [
        (["one"], "needs 2 to 10 classes"),
        ([f"c{i}" for i in range(11)], "needs 2 to 10 classes"),
        (["cat", "  "], "cannot be empty"),
        (["cat", "Cat"], "already a class called 'Cat'"),
        (["cat", "a/b"], "cannot contain /"),
        (["cat", "..\\x"], re.escape("cannot contain \\")),
        (["cat", ".."], "cannot start or end with a dot"),
        (["cat", "x" * 41], "too long"),
        (["cat", "con"], "Windows reserves it"),
        (["cat", "tab\there"], re.escape("cannot contain \\t")),
    ]:
        with pytest.raises(DatasetError, match=match):
            Draft.create(data_dir, "ann", "d", names)
    assert not (data_dir / "drafts" / "ann" / "d").exists()

    draft = Draft.create(data_dir, "ann", "d", [" cat ", "dog"])
    assert draft.classes() == ["cat", "dog"]
    with pytest.raises(DatasetError, match="You already have a draft called 'd'"):
        Draft.create(data_dir, "ann", "d", ["a", "b"])
    draft.add_example("dog", photo(skdata.astronaut, 0))
    assert draft.rename_class("dog", "Hund") == "Hund"
    assert draft.counts() == {"Hund": 1, "cat": 0}
    with pytest.raises(DatasetError, match="already a class called 'HUND'"):
        draft.add_class("HUND")
    draft.add_class("bird")
    draft.remove_class("bird")
    with pytest.raises(DatasetError, match="needs at least 2 classes"):
        draft.remove_class("cat")
    with pytest.raises(DatasetError, match="has no class called 'fish'"):
        draft.add_example("fish", photo(skdata.coffee, 0))
    with pytest.raises(DatasetError, match="is not an example"):
        draft.delete_example("cat", "../../x.png")
    with pytest.raises(ImageError, match="is not an image"):
        draft.add_example("cat", b"not an image", "notes.txt")
    # Too few examples: `build` refuses as `add` does, and writes nothing.
    with pytest.raises(DatasetError, match="Every class needs at least 5"):
        draft.build(data_dir)
    assert not (data_dir / "own").exists()
