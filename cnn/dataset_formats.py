"""Readers for the datasets' original file formats.

CIFAR pickles (from their folder or straight out of the .tar.gz), idx files (MNIST,
Fashion-MNIST), Keras's mnist.npz and scikit-learn's bundled digits. Every loader returns
`(x_train, y_train, x_test, y_test)`: uint8 images shaped (N, H, W, C), channels last even for
grayscale, and int64 labels shaped (N,). Content that does not match its format (truncated,
wrong header, wrong shapes) raises `FormatError`, which the dataset layer reports as a damaged
file; failing to open a file at all is left as `OSError`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import pickle
import struct
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN_FILES, "test_batch")
CIFAR100_FOLDER = "cifar-100-python"
CIFAR100_FILES = ("train", "test", "meta")
# The four files of MNIST and Fashion-MNIST, in the order the loaders return them.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DIGITS_SIZE = 32  # scikit-learn's 8x8 digits are upscaled 4x so that they suit the same CNNs

# A garbled header could otherwise ask numpy for terabytes; the largest real file is 47 MB.
_MAX_IDX_BYTES = 1 << 31
# idx type byte -> element type (all multi-byte types are big-endian).
_IDX_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class FormatError(ValueError):
    """A file's content does not match its format: truncated, wrong header or wrong shapes."""


@contextlib.contextmanager
def _decoding(what: str) -> Iterator[None]:
    # Truncated gzip/tar/zip streams and garbled pickles fail with a zoo of exception types
    # (EOFError, zlib.error, tarfile.ReadError, UnpicklingError, KeyError, ...). Inside a
    # decoder they all mean one thing to the user: this file is damaged.
    try:
        yield
    except (FormatError, MemoryError):
        raise
    except Exception as error:
        raise FormatError(f"{what} cannot be decoded ({error})") from error


# ---------------------------------------------------------------------------------- idx


def find_file(folder: Path, name: str) -> Path | None:
    """`folder/name`, or its unzipped twin when `name` ends in .gz; None when neither exists."""
    for candidate in (name, name.removesuffix(".gz")):
        path = folder / candidate
        if path.is_file():
            return path
    return None


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in an idx file (gzip-compressed or not), in native byte order.

    The format: two zero bytes, a type byte, a byte giving the number of dimensions, each
    dimension as a big-endian uint32, then the data, big-endian, row-major. The data must
    fill exactly what the header promises.
    """
    path = Path(path)
    with open(path, "rb") as raw, _decoding(path.name):
        compressed = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        magic = _read_exactly(stream, 4, path.name)
        if magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or magic[3] == 0:
            raise FormatError(f"{path.name} is not an idx file (wrong magic number {magic.hex()})")
        ndim = magic[3]
        dims = struct.unpack(f">{ndim}I", _read_exactly(stream, 4 * ndim, path.name))
        dtype = np.dtype(_IDX_TYPES[magic[2]])
        if int(np.prod(dims, dtype=np.int64)) * dtype.itemsize > _MAX_IDX_BYTES:
            raise FormatError(f"{path.name} has an impossible header (shape {dims})")
        array = np.empty(dims, dtype)
        _fill(stream, array.reshape(-1).view(np.uint8), path.name)
        if stream.read(1):
            raise FormatError(f"{path.name} is longer than its header says")
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_exactly(stream: io.RawIOBase, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise FormatError(f"{what} is shorter than its header says (truncated?)")
    return data


def _fill(stream, buffer: np.ndarray, what: str) -> None:
    # readinto a preallocated array: no second copy of a 47 MB file, and the result is writable
    view = memoryview(buffer)
    done = 0
    while done < len(view):
        count = stream.readinto(view[done:])
        if not count:
            raise FormatError(f"{what} is shorter than its header says (truncated?)")
        done += count


def load_idx_folder(folder: str | Path) -> Arrays:
    """MNIST or Fashion-MNIST from a folder holding the four idx files of IDX_FILES."""
    folder = Path(folder)
    paths = []
    for name in IDX_FILES:
        path = find_file(folder, name)
        if path is None:
            raise FormatError(f"{name} is missing from {folder}")
        paths.append(path)
    arrays = [read_idx(path) for path in paths]
    return _checked(*arrays, names=[path.name for path in paths])


# -------------------------------------------------------------------------------- CIFAR

# What a CIFAR pickle may build: numpy arrays and bytes, nothing else. A plain pickle.load
# would run whatever code a tampered file names. `_codecs.encode` is how Python 3 writes
# bytes at protocol 2; `_frombuffer` is how numpy writes arrays at protocol 5.
_ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        # The real files were written by numpy 1 (`numpy.core`); numpy 2 renamed it `numpy._core`
        # and warns on the old name.
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def unpickle(data: bytes, what: str = "pickle") -> dict:
    """A CIFAR pickle as a dict with bytes keys (b"data", b"labels", ...), loaded safely."""
    with _decoding(what):
        # encoding="bytes": the files come from Python 2, whose str keys and array buffers
        # must stay bytes.
        batch = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    if not isinstance(batch, dict):
        raise FormatError(f"{what} does not hold a CIFAR batch")
    return batch


def cifar_batch(batch: dict, label_key: bytes = b"labels", what: str = "batch"):
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 of one unpickled CIFAR batch."""
    try:
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    except KeyError as error:
        raise FormatError(f"{what} has no {error.args[0]!r} entry") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 32 * 32 * 3:
        raise FormatError(
            f"{what} holds {data.dtype} data of shape {data.shape}, not (N, 3072) uint8"
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise FormatError(f"{what} has {labels.size} labels for {len(data)} images")
    # Each row is the red plane, then green, then blue, each 32x32 row-major (CHW).
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int64)


def iter_members(path: str | Path, names: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each wanted file, from a folder or a tar archive (.tar.gz or plain).

    In an archive, files are matched by their base name at any depth, in archive order; the
    archive is read once front to back, so a .tar.gz is decompressed only once and never
    extracted to disk. Raises FormatError when a wanted file is missing.
    """
    path, wanted = Path(path), set(names)
    if path.is_dir():
        for name in sorted(wanted):
            if not (path / name).is_file():
                raise FormatError(f"{name} is missing from {path}")
            yield name, (path / name).read_bytes()
        return
    found = set()
    with open(path, "rb") as raw, _decoding(path.name):
        with tarfile.open(fileobj=raw, mode="r|*") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if member.isfile() and name in wanted - found:
                    found.add(name)
                    yield name, archive.extractfile(member).read()
    if wanted - found:
        raise FormatError(f"{path.name} does not contain {', '.join(sorted(wanted - found))}")


def load_cifar10(path: str | Path) -> Arrays:
    """CIFAR-10 from its `cifar-10-batches-py` folder or from the tarball holding it."""
    parts = {}
    for name, data in iter_members(path, CIFAR10_FILES):
        parts[name] = cifar_batch(unpickle(data, name), b"labels", name)
    train = [parts[name] for name in CIFAR10_TRAIN_FILES]
    # Copy the transposed (CHW -> HWC) views into one contiguous array; np.concatenate
    # would keep their strided layout, which makes every later batch slice slower.
    x_train = np.empty((sum(len(labels) for _, labels in train), 32, 32, 3), np.uint8)
    start = 0
    for images, _ in train:
        x_train[start : start + len(images)] = images
        start += len(images)
    y_train = np.concatenate([labels for _, labels in train])
    x_test, y_test = parts["test_batch"]
    return _checked(x_train, y_train, np.ascontiguousarray(x_test), y_test, names=CIFAR10_FILES)


def load_cifar100(path: str | Path) -> tuple[Arrays, tuple[str, ...]]:
    """CIFAR-100 (fine labels) and its class names, from `cifar-100-python` or the tarball."""
    parts, class_names = {}, ()
    for name, data in iter_members(path, CIFAR100_FILES):
        if name == "meta":
            raw_names = unpickle(data, name).get(b"fine_label_names")
            if not isinstance(raw_names, list) or not all(isinstance(n, bytes) for n in raw_names):
                raise FormatError("meta has no list of fine_label_names")
            class_names = tuple(n.decode("utf-8", "replace") for n in raw_names)
        else:
            parts[name] = cifar_batch(unpickle(data, name), b"fine_labels", name)
    x_train, y_train = parts["train"]
    x_test, y_test = parts["test"]
    arrays = _checked(
        np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test,
        names=("train", "train", "test", "test"),
    )
    return arrays, class_names


# -------------------------------------------------------------------------------- MNIST


def load_mnist_npz(path: str | Path) -> Arrays:
    """MNIST from Keras's mnist.npz (arrays x_train, y_train, x_test, y_test)."""
    path = Path(path)
    keys = ("x_train", "y_train", "x_test", "y_test")
    with open(path, "rb") as raw, _decoding(path.name):
        with np.load(raw, allow_pickle=False) as npz:
            arrays = [npz[key] for key in keys]
    return _checked(*arrays, names=[f"{path.name}:{key}" for key in keys])


# ------------------------------------------------------------------------------- digits


def load_digits() -> Arrays:
    """scikit-learn's 1,797 8x8 digits as 32x32x1 uint8 images, light strokes on black.

    Values 0..16 are scaled to 0..255 and the images upscaled bilinearly. The train/test
    split is fixed (stratified, 1,437 / 360, random_state=0), so every run sees the same
    test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits  # imported here: slow to import
    from sklearn.model_selection import train_test_split

    digits = sklearn_digits()
    images = upscale_bilinear(digits.images * (255 / 16), DIGITS_SIZE // 8)
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8)[..., np.newaxis]
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=360, stratify=labels, random_state=0
    )
    return images[train], labels[train], images[test], labels[test]


def upscale_bilinear(images: np.ndarray, factor: int) -> np.ndarray:
    """(N, H, W) float images enlarged `factor` times, bilinear with edge pixels repeated.

    Sample points sit at pixel centres (PIL's and OpenCV's convention), so the picture
    is not shifted by half a pixel.
    """
    rows = _bilinear_weights(images.shape[1], images.shape[1] * factor)
    cols = _bilinear_weights(images.shape[2], images.shape[2] * factor)
    return np.einsum("ri,nij,cj->nrc", rows, images, cols)


def _bilinear_weights(size_in: int, size_out: int) -> np.ndarray:
    # row o holds the weights that output pixel o gives to each input pixel
    centres = np.clip((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0, size_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    frac = centres - low
    weights = np.zeros((size_out, size_in))
    np.add.at(weights, (np.arange(size_out), low), 1 - frac)
    np.add.at(weights, (np.arange(size_out), high), frac)
    return weights


# -------------------------------------------------------------------------------- shared


def _checked(x_train, y_train, x_test, y_test, names) -> Arrays:
    # Every loader ends here: one place that guarantees the layer's promise about shapes/types.
    out = []
    for images, labels, image_name, label_name in (
        (x_train, y_train, names[0], names[1]),
        (x_test, y_test, names[2], names[3]),
    ):
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise FormatError(
                f"{image_name} holds {images.dtype} of shape {images.shape}, not uint8 images"
            )
        if images.ndim == 3:  # grayscale: add the channel axis the network expects
            images = images[..., np.newaxis]
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise FormatError(
                f"{label_name} holds {labels.dtype} of shape {labels.shape}, not labels"
            )
        if len(labels) != len(images):
            raise FormatError(f"{label_name} has {len(labels)} labels for {len(images)} images")
        out += [images, labels.astype(np.int64)]
    return tuple(out)
