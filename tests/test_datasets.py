"""Tests for cnn.datasets and cnn.dataset_formats.

The parsers are checked on small files written here in the original formats (protocol-2
pickles with bytes keys inside a real .tar.gz, gzipped idx files with their magic numbers);
nothing is downloaded. Downloading is tested in test_download.py against a local server.
"""

import dataclasses
import gzip
import io
import pickle
import struct
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from cnn import dataset_formats as formats
from cnn import datasets
from cnn.errors import ConfigError, DatasetError

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = "http://127.0.0.1:9/"  # the discard port: refused at once, never the internet


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    # Never read or write the real ~/.keras/datasets or $CNN_DATA_DIR.
    monkeypatch.delenv("CNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


# ------------------------------------------------------------------ writers of the formats


def write_idx(path, array, compress=True):
    """An idx file: 0, 0, type byte, ndim, big-endian uint32 dims, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    Path(path).write_bytes(gzip.compress(data) if compress else data)


def cifar_pickle(images, labels, label_key=b"labels", extra=None):
    """A batch as the CIFAR authors wrote it: a protocol-2 dict with bytes keys, CHW rows."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        label_key: [int(label) for label in labels],
        b"data": rows,
        b"filenames": [b"img_%d.png" % i for i in range(len(images))],
        **(extra or {}),
    }
    return pickle.dumps(batch, protocol=2)


def write_tar(path, members, folder):
    """A real .tar.gz holding `members` ({name: bytes}) in `folder`, like the CIFAR tarballs."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def fake_cifar10(per_batch=3, seed=0):
    """{file name: pickle bytes} of a tiny CIFAR-10, and the arrays it should load as."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (6 * per_batch, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 6 * per_batch)
    files = {
        name: cifar_pickle(x[batch], y[batch])
        for name, batch in zip(formats.CIFAR10_FILES, np.split(np.arange(len(y)), 6))
    }
    files["batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    split = 5 * per_batch
    return files, (x[:split], y[:split], x[split:], y[split:])


def write_folder(folder, files):
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_idx_set(folder, seed=0, compress=True):
    rng = np.random.default_rng(seed)
    arrays = (
        rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 12).astype(np.uint8),
        rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 5).astype(np.uint8),
    )
    folder.mkdir(parents=True)
    for name, array in zip(formats.IDX_FILES, arrays):
        write_idx(folder / (name if compress else name.removesuffix(".gz")), array, compress)
    return arrays


def assert_loaded(dataset, expected, image_shape):
    x_train, y_train, x_test, y_test = expected
    for got, want in ((dataset.x_train, x_train), (dataset.x_test, x_test)):
        assert got.dtype == np.uint8 and got.shape[1:] == image_shape
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    np.testing.assert_array_equal(dataset.y_train, y_train)
    np.testing.assert_array_equal(dataset.y_test, y_test)
    assert dataset.info.train_size == len(x_train) and dataset.info.test_size == len(x_test)


# ---------------------------------------------------------------------------- registry


def test_registry_order_default_and_shapes():
    assert list(datasets.DATASETS) == ["cifar10", "fashion_mnist", "mnist", "cifar100", "digits"]
    assert datasets.DEFAULT_DATASET == "cifar10"
    cifar100 = datasets.get_info("cifar100")
    assert cifar100.num_classes == len(set(cifar100.class_names)) == 100
    assert (cifar100.channels, datasets.get_info("mnist").channels) == (3, 1)
    assert [name for name, info in datasets.DATASETS.items() if info.light_on_dark] == [
        "fashion_mnist", "mnist", "digits",
    ]


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DatasetError, match="cifar10, fashion_mnist, mnist, cifar100, digits"):
        datasets.get_info("imagenet")
    with pytest.raises(DatasetError):
        datasets.locate("imagenet")


def test_data_dirs_order(tmp_path, monkeypatch):
    keras_cache = tmp_path / "keras-home" / "datasets"
    assert datasets.data_dirs() == [keras_cache]
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "shared"))
    assert datasets.data_dirs() == [tmp_path / "shared", keras_cache]
    assert datasets.data_dirs(tmp_path / "mine") == [tmp_path / "mine"]


# ---------------------------------------------------------------------------- idx parser


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "images", images, compress)
    np.testing.assert_array_equal(formats.read_idx(tmp_path / "images"), images)
    wide = np.array([1, -2, 70000], dtype=np.int32)  # multi-byte: big-endian on disk
    write_idx(tmp_path / "wide", wide, compress)
    np.testing.assert_array_equal(formats.read_idx(tmp_path / "wide"), wide)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:-5], "shorter than its header"),
        (lambda data: data + b"\0", "longer than its header"),
        (lambda data: b"\x01" + data[1:], "wrong magic number"),
        (lambda data: data[:6], "shorter than its header"),
    ],
)
def test_read_idx_rejects_damaged_files(tmp_path, damage, message):
    write_idx(tmp_path / "good", np.zeros((2, 3, 3), np.uint8), compress=False)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(damage((tmp_path / "good").read_bytes())))
    with pytest.raises(formats.FormatError, match=message):
        formats.read_idx(tmp_path / "bad.gz")


def test_truncated_gzip_is_a_format_error(tmp_path):
    write_idx(tmp_path / "images.gz", np.ones((50, 28, 28), np.uint8))
    data = (tmp_path / "images.gz").read_bytes()
    (tmp_path / "images.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(formats.FormatError):
        formats.read_idx(tmp_path / "images.gz")


# ------------------------------------------------------------------------- loading MNISTs


@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_from_idx_folder(tmp_path, compress):
    expected = write_idx_set(tmp_path / "fashion-mnist", compress=compress)
    assert datasets.locate("fashion_mnist", tmp_path) == tmp_path / "fashion-mnist"
    dataset = datasets.load("fashion_mnist", tmp_path, download_missing=False)
    assert_loaded(dataset, expected, (28, 28, 1))
    assert dataset.y_train.dtype == np.int64
    assert dataset.info.class_names == datasets.get_info("fashion_mnist").class_names


def test_load_mnist_from_npz_or_idx_folder(tmp_path):
    expected = write_idx_set(tmp_path / "folder" / "mnist")
    assert_loaded(datasets.load("mnist", tmp_path / "folder", False), expected, (28, 28, 1))
    (tmp_path / "npz").mkdir()
    keys = ("x_train", "y_train", "x_test", "y_test")
    np.savez_compressed(tmp_path / "npz" / "mnist.npz", **dict(zip(keys, expected)))
    assert_loaded(datasets.load("mnist", tmp_path / "npz", False), expected, (28, 28, 1))


def test_incomplete_idx_folder_does_not_count(tmp_path):
    write_idx_set(tmp_path / "fashion-mnist")
    (tmp_path / "fashion-mnist" / formats.IDX_FILES[3]).unlink()
    assert not datasets.is_available("fashion_mnist", tmp_path)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz") as error:
        datasets.load("fashion_mnist", tmp_path, download_missing=False)
    # only the missing file is asked for, in the folder it belongs to
    assert str(tmp_path / "fashion-mnist") in str(error.value)
    assert "train-images" not in str(error.value)


# ------------------------------------------------------------------------- loading CIFARs


@pytest.mark.parametrize(
    "where, is_tarball",
    [
        ("cifar-10-batches-py", False),  # extracted by hand or by Keras 2
        ("cifar-10-batches-py-target/cifar-10-batches-py", False),  # Keras 3
        ("cifar-10-python_extracted/cifar-10-batches-py", False),
        ("cifar-10-python.tar.gz", True),  # what download() keeps
        ("cifar-10-batches-py-target_archive", True),  # Keras 3's copy of the tarball
    ],
)
def test_load_cifar10_from_folder_or_tarball(tmp_path, where, is_tarball):
    files, expected = fake_cifar10()
    if not is_tarball:
        write_folder(tmp_path / where, files)
    else:
        write_tar(tmp_path / where, files, "cifar-10-batches-py")
    assert datasets.locate("cifar10", tmp_path) == tmp_path / where
    dataset = datasets.load("cifar10", tmp_path, download_missing=False)
    # expected was encoded into CHW rows by cifar_pickle: equality proves the HWC decoding
    assert_loaded(dataset, expected, (32, 32, 3))
    assert dataset.x_train.flags.c_contiguous and dataset.x_test.flags.c_contiguous


def test_half_extracted_cifar_folder_is_not_mistaken_for_the_dataset(tmp_path):
    files, _ = fake_cifar10()
    del files["test_batch"]
    write_folder(tmp_path / "cifar-10-batches-py", files)
    assert datasets.locate("cifar10", tmp_path) is None
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):
        datasets.load("cifar10", tmp_path, download_missing=False)


def test_load_cifar100_uses_fine_labels_and_meta_names(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    fine = np.array([0, 99, 5, 42, 7, 8, 9])
    names = [b"class_%02d" % i for i in range(100)]
    files = {
        "train": cifar_pickle(x[:4], fine[:4], b"fine_labels", {b"coarse_labels": [1] * 4}),
        "test": cifar_pickle(x[4:], fine[4:], b"fine_labels", {b"coarse_labels": [2] * 3}),
        "meta": pickle.dumps({b"fine_label_names": names, b"coarse_label_names": []}, protocol=2),
    }
    write_tar(tmp_path / "cifar-100-python.tar.gz", files, "cifar-100-python")
    dataset = datasets.load("cifar100", tmp_path, download_missing=False)
    assert_loaded(dataset, (x[:4], fine[:4], x[4:], fine[4:]), (32, 32, 3))
    assert dataset.info.class_names[99] == "class_99"


def test_pickles_written_by_numpy_1_load_without_warnings(tmp_path):
    # The real CIFAR files name numpy 1's `numpy.core`; numpy 2 warns when it is imported.
    files, expected = fake_cifar10()
    files = {name: data.replace(b"numpy._core.", b"numpy.core.") for name, data in files.items()}
    assert b"numpy.core.multiarray" in files["test_batch"]
    write_folder(tmp_path / "cifar-10-batches-py", files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = datasets.load("cifar10", tmp_path, download_missing=False)
    assert_loaded(dataset, expected, (32, 32, 3))


# -------------------------------------------------------------------- damaged and missing


def _truncated_tarball(folder):
    files, _ = fake_cifar10()
    write_tar(folder / "cifar-10-python.tar.gz", files, "cifar-10-batches-py")
    data = (folder / "cifar-10-python.tar.gz").read_bytes()
    (folder / "cifar-10-python.tar.gz").write_bytes(data[: len(data) * 2 // 3])


def _garbage_batch(folder):
    files, _ = fake_cifar10()
    files["data_batch_3"] = files["data_batch_3"][:100]
    write_folder(folder / "cifar-10-batches-py", files)


def _malicious_batch(folder):
    # a pickle that would run a shell command if loaded with plain pickle.load
    files, _ = fake_cifar10()
    files["test_batch"] = b"cos\nsystem\n(S'echo hacked'\ntR."
    write_folder(folder / "cifar-10-batches-py", files)


def _wrong_shape_batch(folder):
    files, _ = fake_cifar10()
    batch = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    files["test_batch"] = pickle.dumps(batch, protocol=2)
    write_folder(folder / "cifar-10-batches-py", files)


@pytest.mark.parametrize(
    "damage", [_truncated_tarball, _garbage_batch, _malicious_batch, _wrong_shape_batch]
)
def test_damaged_cifar_files_say_delete_and_download_again(tmp_path, damage):
    damage(tmp_path)
    with pytest.raises(DatasetError, match="is damaged .*; delete it and download again") as error:
        datasets.load("cifar10", tmp_path, download_missing=False)
    assert str(tmp_path) in str(error.value)


def test_damaged_npz_and_out_of_range_labels(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DatasetError, match="mnist.npz is damaged"):
        datasets.load("mnist", tmp_path, download_missing=False)
    arrays = write_idx_set(tmp_path / "fashion-mnist")
    bad_labels = np.full(len(arrays[1]), 10, np.uint8)
    write_idx(tmp_path / "fashion-mnist" / formats.IDX_FILES[1], bad_labels)
    with pytest.raises(DatasetError, match="labels are outside 0..9"):
        datasets.load("fashion_mnist", tmp_path, download_missing=False)


def test_missing_and_offline_names_the_file_and_the_folder(tmp_path, monkeypatch):
    remote = datasets.DATASETS["cifar10"].files[0]
    offline = datasets.RemoteFile(remote.path, OFFLINE + remote.path, remote.checksums, remote.size)
    monkeypatch.setitem(datasets.DATASETS, "cifar10",
                        dataclasses.replace(datasets.DATASETS["cifar10"], files=(offline,)))
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CNN_OFFLINE", raising=False)  # the URL is a closed local port
    with pytest.raises(DatasetError) as error:
        datasets.load("cifar10")
    message = str(error.value)
    assert message.startswith("CIFAR-10 is not on this computer and it cannot be downloaded now (")
    url = OFFLINE + "cifar-10-python.tar.gz"
    assert f"Put cifar-10-python.tar.gz (from {url}) in {tmp_path / 'data'}." in message
    assert list((tmp_path / "data").iterdir()) == []  # no partial file left behind


def test_missing_with_download_off_creates_nothing(tmp_path):
    with pytest.raises(DatasetError, match="downloading is switched off") as error:
        datasets.load("mnist", tmp_path / "nowhere", download_missing=False)
    url = datasets.DATASETS["mnist"].files[0].url
    assert f"Put mnist.npz (from {url}) in {tmp_path / 'nowhere'}." in str(error.value)
    assert not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------------- split


def indexed_dataset(labels, test_size=7):
    """A dataset whose image i carries i in its first two pixels, so splits can be traced."""
    index = np.arange(len(labels))
    x = np.zeros((len(labels), 4, 4, 1), np.uint8)
    x[:, 0, 0, 0], x[:, 0, 1, 0] = index % 256, index // 256
    x_test = np.full((test_size, 4, 4, 1), 9, np.uint8)
    y_test = np.zeros(test_size, np.int64)
    return datasets.Dataset(datasets.get_info("mnist"), x, np.asarray(labels), x_test, y_test)


def traced(images):
    return images[:, 0, 0, 0].astype(int) + 256 * images[:, 0, 1, 0].astype(int)


def test_split_is_deterministic_disjoint_and_stratified():
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(5), 40))
    dataset = indexed_dataset(labels)
    splits = datasets.split(dataset, validation_split=0.1, seed=7)
    train, val = traced(splits.x_train), traced(splits.x_val)
    assert (len(train), len(val)) == (180, 20)
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(range(200))
    np.testing.assert_array_equal(splits.y_train, labels[train])  # labels follow their images
    np.testing.assert_array_equal(np.bincount(splits.y_val), [4] * 5)
    assert splits.x_test is dataset.x_test and splits.y_test is dataset.y_test

    again = datasets.split(dataset, validation_split=0.1, seed=7)
    np.testing.assert_array_equal(traced(again.x_val), val)
    other = datasets.split(dataset, validation_split=0.1, seed=8)
    assert set(traced(other.x_val)) != set(val)


def test_split_train_size_subsamples_the_rest():
    labels = np.repeat(np.arange(4), 50)
    splits = datasets.split(indexed_dataset(labels), validation_split=0.2, train_size=40, seed=0)
    assert set(traced(splits.x_train)).isdisjoint(traced(splits.x_val))
    np.testing.assert_array_equal(np.bincount(splits.y_train), [10] * 4)
    np.testing.assert_array_equal(np.bincount(splits.y_val), [10] * 4)


def test_split_without_validation_keeps_shapes():
    splits = datasets.split(indexed_dataset(np.arange(30) % 3), validation_split=0)
    assert splits.x_val.shape == (0, 4, 4, 1) and splits.y_val.shape == (0,)
    assert splits.x_val.dtype == np.uint8 and len(splits.x_train) == 30


@pytest.mark.parametrize(
    "kwargs",
    [{"validation_split": 1.0}, {"validation_split": -0.1}, {"train_size": 28}, {"train_size": 0}],
)
def test_split_rejects_impossible_sizes(kwargs):
    with pytest.raises(ConfigError):
        datasets.split(indexed_dataset(np.arange(30) % 3), **kwargs)


# -------------------------------------------------------------------------------- digits


def test_digits_work_offline_with_a_fixed_split():
    assert datasets.is_available("digits", "/nonexistent")
    first, second = datasets.load("digits", download_missing=False), datasets.load("digits")
    assert first.x_train.shape == (1437, 32, 32, 1) and first.x_test.shape == (360, 32, 32, 1)
    assert first.x_train.dtype == np.uint8 and first.x_train.max() == 255
    np.testing.assert_array_equal(first.x_test, second.x_test)
    assert np.bincount(first.y_test, minlength=10).min() >= 35  # stratified: ~36 per class
    # light strokes on black: the left and right edges are dark, the middle is not
    edges = first.x_train[:, :, [0, 1, -2, -1]]
    assert edges.mean() < 10 < 100 < first.x_train[:, 12:20, 12:20].mean()


def test_upscale_matches_pil_bilinear():
    image = pytest.importorskip("PIL.Image")
    digits = np.random.default_rng(0).uniform(0, 255, (3, 8, 8))
    ours = formats.upscale_bilinear(digits, 4)
    for mine, original in zip(ours, digits):
        pil = image.fromarray(original.astype(np.float32), "F")
        theirs = np.asarray(pil.resize((32, 32), image.BILINEAR))
        np.testing.assert_allclose(mine, theirs, atol=1e-3)


# ---------------------------------------------------------------------- real Fashion-MNIST


def test_real_fashion_mnist_through_cnn_data_dir(real_data_dir):
    dataset = datasets.load("fashion_mnist", download_missing=False)
    assert dataset.x_train.shape == (60000, 28, 28, 1)
    assert dataset.x_test.shape == (10000, 28, 28, 1)
    assert dataset.x_train.dtype == dataset.x_test.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(dataset.y_train), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(dataset.y_test), [1000] * 10)
    assert dataset.info == datasets.get_info("fashion_mnist")
