"""The datasets the playground trains on: what they are, where their files are, how to
download and load them, and how to split them.

Files are kept in the layout of Keras's cache, so a ~/.keras/datasets filled by
`keras.datasets.<name>.load_data()` is used as it is. Images stay uint8 (N, H, W, C) in
memory (CIFAR-10 is 150 MB that way, 600 MB as float32): scaling is the model's job.
Every problem a user can fix raises `DatasetError` with a sentence saying what to do.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn import dataset_formats as formats
from cnn import download as fetching
from cnn.errors import ConfigError, DatasetError

Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class DatasetInfo:
    """What the UI shows about a dataset before it is on disk."""

    name: str  # registry key, e.g. "cifar10"
    title: str  # display name, e.g. "CIFAR-10"
    class_names: tuple[str, ...]  # index = label
    image_shape: tuple[int, int, int]  # (height, width, channels) as the network sees it
    train_size: int  # images in the official training set
    test_size: int  # images in the official test set
    source: str  # who made it, and where it comes from
    licence: str
    light_on_dark: bool  # white strokes on black: user drawings must be inverted to match
    description: str  # one or two sentences for the UI

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.image_shape[2]


_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_LICENCE = (
    "No licence stated; free to use, citing Alex Krizhevsky, "
    "'Learning Multiple Layers of Features from Tiny Images', 2009."
)
_CIFAR100_CLASSES = (
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
    "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
    "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
    "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
    "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
    "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
    "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel "
    "streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
    "trout tulip turtle wardrobe whale willow_tree wolf woman worm"
).split()

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="cifar10",
            title="CIFAR-10",
            class_names=(
                "airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck",
            ),
            image_shape=(32, 32, 3),
            train_size=50_000,
            test_size=10_000,
            source="Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, University of Toronto: "
            "https://www.cs.toronto.edu/~kriz/cifar.html",
            licence=_CIFAR_LICENCE,
            light_on_dark=False,
            description="60,000 small colour photos in 10 classes: vehicles and animals. "
            "Hard enough that a CNN clearly beats a plain dense network.",
        ),
        DatasetInfo(
            name="fashion_mnist",
            title="Fashion-MNIST",
            class_names=(
                "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
            ),
            image_shape=(28, 28, 1),
            train_size=60_000,
            test_size=10_000,
            source="Zalando Research, https://github.com/zalandoresearch/fashion-mnist "
            f"(Keras's copy: {_KERAS_ORIGIN})",
            licence="MIT",
            light_on_dark=True,
            description="70,000 grayscale 28x28 pictures of clothes and shoes in 10 classes. "
            "A harder drop-in replacement for MNIST.",
        ),
        DatasetInfo(
            name="mnist",
            title="MNIST",
            class_names=tuple("0123456789"),
            image_shape=(28, 28, 1),
            train_size=60_000,
            test_size=10_000,
            source="Yann LeCun, Corinna Cortes and Christopher Burges, "
            f"http://yann.lecun.com/exdb/mnist/ (Keras's copy: {_KERAS_ORIGIN}mnist.npz)",
            licence="CC BY-SA 3.0",
            light_on_dark=True,
            description="70,000 handwritten digits, 28x28 grayscale. "
            "The classic first CNN: 99% test accuracy is within reach.",
        ),
        DatasetInfo(
            name="cifar100",
            title="CIFAR-100",
            class_names=tuple(_CIFAR100_CLASSES),
            image_shape=(32, 32, 3),
            train_size=50_000,
            test_size=10_000,
            source="Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, University of Toronto: "
            "https://www.cs.toronto.edu/~kriz/cifar.html",
            licence=_CIFAR_LICENCE,
            light_on_dark=False,
            description="Like CIFAR-10 but with 100 classes, so only 500 training photos "
            "per class: much harder.",
        ),
        DatasetInfo(
            name="digits",
            title="Digits (scikit-learn)",
            class_names=tuple("0123456789"),
            image_shape=(formats.DIGITS_SIZE, formats.DIGITS_SIZE, 1),
            train_size=1_437,
            test_size=360,
            source="UCI Optical Recognition of Handwritten Digits, "
            "https://archive.ics.uci.edu/dataset/80, bundled with scikit-learn",
            licence="CC BY 4.0",
            light_on_dark=True,
            description="1,797 tiny 8x8 handwritten digits that come with scikit-learn, "
            "upscaled to 32x32. Needs no download and trains in seconds.",
        ),
    )
}
DEFAULT_DATASET = "cifar10"
OFFLINE_ENV = "CNN_OFFLINE"  # set (to anything) to never download


@dataclass(frozen=True)
class RemoteFile:
    """A file `download` can fetch."""

    path: str  # where it goes, relative to a data folder
    url: str
    checksums: tuple[str, ...] = ()  # "md5:<hex>" / "sha256:<hex>"; all must match
    size: int | None = None  # bytes, for a progress total before the server answers


# What `download` fetches. Checksums: the CIFAR homepage's md5 and the sha256 Keras checks
# (keras/src/datasets/*.py). Keras publishes none for Fashion-MNIST, and its copy is not
# promised to be byte-identical to Zalando's (whose md5s are known), so those files are
# checked only for length here and by the idx parser when loading.
DOWNLOADS: dict[str, tuple[RemoteFile, ...]] = {
    "cifar10": (
        RemoteFile(
            "cifar-10-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            (
                "md5:c58f30108f718f92721af3b95e74349a",
                "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
            170_498_071,
        ),
    ),
    "fashion_mnist": tuple(
        RemoteFile(f"fashion-mnist/{name}", _KERAS_ORIGIN + name, (), size)
        for name, size in zip(formats.IDX_FILES, (26_421_880, 29_515, 4_422_102, 5_148))
    ),
    "mnist": (
        RemoteFile(
            "mnist.npz",
            _KERAS_ORIGIN + "mnist.npz",
            ("sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",),
            11_490_434,
        ),
    ),
    "cifar100": (
        RemoteFile(
            "cifar-100-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            (
                "md5:eb9058c3a382ffc7106e4002c42a8d85",
                "sha256:85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
            ),
            169_001_437,
        ),
    ),
    "digits": (),
}


@dataclass(frozen=True)
class _Layout:
    # A place a dataset may be, relative to a data folder: a folder counts only when it
    # holds all of `needs` (a half-extracted folder does not), a single file when it exists.
    path: str
    needs: tuple[str, ...] = ()

    def find(self, root: Path) -> Path | None:
        target = root / self.path
        if not self.needs:
            return target if target.is_file() else None
        if target.is_dir() and all(formats.find_file(target, name) for name in self.needs):
            return target
        return None


def _cifar_layouts(folder: str, needs: tuple[str, ...], tarball: str) -> tuple[_Layout, ...]:
    stem = tarball.split(".")[0]
    return (
        _Layout(folder, needs),  # extracted by hand, or by Keras 2
        _Layout(f"{folder}-target/{folder}", needs),  # Keras 3 get_file(extract=True) today
        _Layout(f"{folder}/{folder}", needs),  # earlier Keras 3 releases
        _Layout(f"{stem}_extracted/{folder}", needs),  # get_file("<tarball>", extract=True)
        _Layout(tarball),  # what `download` keeps: read in place, never extracted
        _Layout(f"{folder}.tar.gz"),  # Keras 2 get_file(untar=True)
        _Layout(f"{folder}-target_archive"),  # the tarballs Keras 3 keeps beside its folders
        _Layout(f"{folder}_archive"),
    )


# Searched in order in each data folder; folders first, as they load without decompressing.
_LAYOUTS: dict[str, tuple[_Layout, ...]] = {
    "cifar10": _cifar_layouts(
        formats.CIFAR10_FOLDER, formats.CIFAR10_FILES, "cifar-10-python.tar.gz"
    ),
    "fashion_mnist": (_Layout("fashion-mnist", formats.IDX_FILES),),
    "mnist": (_Layout("mnist.npz"), _Layout("mnist", formats.IDX_FILES)),
    "cifar100": _cifar_layouts(
        formats.CIFAR100_FOLDER, formats.CIFAR100_FILES, "cifar-100-python.tar.gz"
    ),
    "digits": (),
}


def get_info(name: str) -> DatasetInfo:
    """The registry entry for `name`; DatasetError listing the known names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise DatasetError(
            f"There is no dataset called {name!r}; choose one of {', '.join(DATASETS)}."
        ) from None


def data_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for dataset files, in order.

    Only `data_dir` when given. Otherwise $CNN_DATA_DIR (when set) and then Keras's cache:
    $KERAS_HOME/datasets, else ~/.keras/datasets, or /tmp/.keras/datasets when the home
    folder is read-only (Keras's own rule).
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser().absolute()]
    dirs = []
    if os.environ.get("CNN_DATA_DIR"):
        dirs.append(Path(os.environ["CNN_DATA_DIR"]).expanduser().absolute())
    if "KERAS_HOME" in os.environ:
        keras_home = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path("~").expanduser()
        keras_home = (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"
    keras_datasets = (keras_home / "datasets").absolute()
    if keras_datasets not in dirs:
        dirs.append(keras_datasets)
    return dirs


def locate(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The file or folder holding dataset `name`, or None when it is not on this computer.

    Folders count only when complete; files are not opened, so a damaged one is found here
    and reported by `load`. digits is always found (scikit-learn ships it).
    """
    get_info(name)
    if name == "digits":
        spec = importlib.util.find_spec("sklearn")  # finding, not importing: this is cheap
        if spec is None or spec.origin is None:
            return None
        return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    for root in data_dirs(data_dir):
        for layout in _LAYOUTS[name]:
            found = layout.find(root)
            if found is not None:
                return found
    return None


def is_available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether dataset `name` can be loaded without downloading."""
    return locate(name, data_dir) is not None


def download(
    name: str, data_dir: str | Path | None = None, progress: Progress | None = None
) -> Path:
    """Fetch what is missing of dataset `name`; return where it now is (as `locate` would).

    Does nothing when the dataset is already here. Files go to the first writable folder of
    `data_dirs(data_dir)`, each written whole or not at all (see `cnn.download.fetch`);
    the CIFAR tarballs are kept as they are. `progress(bytes_done, bytes_total_or_None)`
    counts over all files of the dataset and may raise to cancel.
    """
    info = get_info(name)
    found = locate(name, data_dir)
    if found is not None:
        return found
    if not DOWNLOADS[name]:
        raise DatasetError(_missing_message(name, Path(), ()))
    target = _writable_dir(data_dir)
    if target is None:
        folders = ", ".join(str(folder) for folder in data_dirs(data_dir))
        raise DatasetError(
            f"{info.title} is not on this computer and cannot be downloaded: "
            f"none of these folders can be written to: {folders}."
        )
    files = _missing_files(name, target)
    if os.environ.get(OFFLINE_ENV):
        # Offline mode (a classroom without Wi-Fi, the test suite): never touch the network.
        raise DatasetError(_missing_message(name, target, files))
    sizes = [file.size for file in files]
    completed = 0
    for index, file in enumerate(files):
        report = None
        if progress is not None:
            report = _counting_all_files(progress, completed, sizes[index], sizes[index + 1 :])
        try:
            fetching.fetch(file.url, target / file.path, file.checksums, report)
        except fetching.NetworkError as error:
            raise DatasetError(_missing_message(name, target, files[index:], str(error))) from error
        except fetching.ChecksumError as error:
            raise DatasetError(
                f"The download of {file.url} arrived damaged ({error}), so it was not kept; "
                f"try again later, or put {Path(file.path).name} in {(target / file.path).parent} "
                "yourself."
            ) from error
        except OSError as error:
            raise DatasetError(
                f"{info.title} could not be saved in {(target / file.path).parent} "
                f"({error.strerror or error})."
            ) from error
        completed += (target / file.path).stat().st_size
    found = locate(name, target)
    if found is None:  # a registry/layout mismatch: a bug, not the user's problem
        raise RuntimeError(f"{name} was downloaded to {target} but is not found there")
    return found


@dataclass
class Dataset:
    """A whole dataset in memory, as published: official train and test sets."""

    info: DatasetInfo  # the registry entry, with the sizes and class names found in the files
    x_train: np.ndarray  # uint8 (N, H, W, C), channels last even for grayscale
    y_train: np.ndarray  # int64 (N,) class indices
    x_test: np.ndarray
    y_test: np.ndarray


def load(
    name: str,
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Dataset `name` from this computer, downloading it first when missing and allowed.

    Raises DatasetError when it is missing and cannot (or may not) be downloaded, and when
    its files are damaged.
    """
    info = get_info(name)
    path = locate(name, data_dir)
    if path is None:
        if not download_missing:
            target = _writable_dir(data_dir) or data_dirs(data_dir)[0]
            files = _missing_files(name, target) or DOWNLOADS[name]
            raise DatasetError(_missing_message(name, target, files))
        path = download(name, data_dir, progress)
    try:
        class_names = info.class_names
        if name == "digits":
            arrays = formats.load_digits()
        elif name == "cifar10":
            arrays = formats.load_cifar10(path)
        elif name == "cifar100":
            arrays, class_names = formats.load_cifar100(path)
        elif path.is_dir():  # mnist/ or fashion-mnist/ with idx files
            arrays = formats.load_idx_folder(path)
        else:
            arrays = formats.load_mnist_npz(path)
        _check_fits(info, arrays, class_names)
    except formats.FormatError as error:
        raise DatasetError(
            f"The {info.title} data in {path} is damaged ({error}); delete it and download "
            "again."
        ) from error
    except OSError as error:
        raise DatasetError(
            f"The {info.title} data in {path} cannot be read ({error.strerror or error})."
        ) from error
    x_train, y_train, x_test, y_test = arrays
    info = dataclasses.replace(
        info, class_names=class_names, train_size=len(x_train), test_size=len(x_test)
    )
    return Dataset(info, x_train, y_train, x_test, y_test)


@dataclass
class Splits:
    """Train/validation/test arrays for one training run; images uint8, labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray  # held out of the official training set
    y_val: np.ndarray
    x_test: np.ndarray  # the official test set, untouched, for the final evaluation
    y_test: np.ndarray


def split(
    dataset: Dataset,
    validation_split: float = 0.1,
    train_size: int | None = None,
    seed: int = 0,
) -> Splits:
    """Hold out a validation set from the training set; optionally subsample the rest.

    `round(validation_split * N)` training images become the validation set; `train_size`
    (default: all that remain) of the others form the training set. Both are drawn stratified
    (each class in proportion) and the same `seed` always gives the same split. The test set
    is passed through as it is. Images keep their original order within each part.
    Raises ConfigError for a validation_split outside [0, 1) or an impossible train_size.
    """
    count = len(dataset.y_train)
    if not 0 <= validation_split < 1:
        raise ConfigError(
            f"The validation split must be at least 0 and below 1, not {validation_split}."
        )
    val_count = round(validation_split * count)
    remaining = count - val_count
    if remaining < 1:
        raise ConfigError(
            f"A validation split of {validation_split} leaves no training images "
            f"out of {count}."
        )
    if train_size is None:
        train_size = remaining
    if not 1 <= train_size <= remaining:
        raise ConfigError(
            f"The training set size must be between 1 and {remaining} (the {count} training "
            f"images minus {val_count} for validation), not {train_size}."
        )
    order = _stratified_order(dataset.y_train, np.random.default_rng(seed))
    val = np.sort(order[:val_count])
    train = np.sort(order[val_count : val_count + train_size])
    return Splits(
        dataset.x_train[train], dataset.y_train[train],
        dataset.x_train[val], dataset.y_train[val],
        dataset.x_test, dataset.y_test,
    )


def _stratified_order(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # A random order in which every prefix holds each class in proportion: shuffle, number
    # each image within its class (0, 1, 2, ...), then sort by that number divided by the
    # class size. Taking the first k images is then a stratified sample of k.
    shuffled = rng.permutation(len(labels))
    shuffled_labels = labels[shuffled]
    by_class = np.argsort(shuffled_labels, kind="stable")
    class_sizes = np.bincount(shuffled_labels)
    class_starts = np.concatenate([[0], np.cumsum(class_sizes)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_class] = np.arange(len(labels)) - np.repeat(class_starts, class_sizes)
    key = (rank + 0.5) / class_sizes[shuffled_labels]
    return shuffled[np.argsort(key, kind="stable")]


def _writable_dir(data_dir: str | Path | None) -> Path | None:
    # The first folder we could write into, creating it if need be; checked without creating
    # anything, so that merely explaining where files should go leaves no empty folders.
    for folder in data_dirs(data_dir):
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return folder
    return None


def _counting_all_files(progress: Progress, completed: int, expected_here, expected_after):
    # fetch reports bytes of one file; the user wants one bar for the whole dataset
    def report(done: int, total: int | None) -> None:
        sizes = [total if total is not None else expected_here, *expected_after]
        progress(completed + done, None if None in sizes else completed + sum(sizes))

    return report


def _missing_files(name: str, target: Path) -> list[RemoteFile]:
    return [
        file
        for file in DOWNLOADS[name]
        if formats.find_file((target / file.path).parent, Path(file.path).name) is None
    ]


def _missing_message(name: str, target: Path, files, reason: str | None = None) -> str:
    # "CIFAR-10 is not on this computer and it cannot be downloaded now (Connection refused).
    #  Put cifar-10-python.tar.gz (from https://...) in /home/me/.keras/datasets."
    info = get_info(name)
    if not files:  # digits: nothing to download, scikit-learn brings it
        return (
            f"{info.title} comes with scikit-learn, which is not installed "
            "(pip install scikit-learn)."
        )
    folder = (target / files[0].path).parent  # a dataset's files share one folder
    names = [Path(file.path).name for file in files]
    base = files[0].url.removesuffix(names[0])
    if len(files) == 1 or all(file.url == base + n for file, n in zip(files, names)):
        listed = _and(names) + f" (from {files[0].url if len(files) == 1 else base})"
    else:
        listed = _and([f"{n} (from {file.url})" for file, n in zip(files, names)])
    put = f"Put {listed} in {folder}."
    if reason is None:
        return f"{info.title} is not on this computer and downloading is switched off. {put}"
    return f"{info.title} is not on this computer and it cannot be downloaded now ({reason}). {put}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _check_fits(info: DatasetInfo, arrays, class_names: tuple[str, ...]) -> None:
    # The files parsed, but are they this dataset? (A wrong file under the right name.)
    x_train, y_train, x_test, y_test = arrays
    for images, labels, part in ((x_train, y_train, "training"), (x_test, y_test, "test")):
        if images.shape[1:] != info.image_shape:
            raise formats.FormatError(
                f"its {part} images are {images.shape[1:]}, not {info.image_shape}"
            )
        if len(labels) and not 0 <= labels.min() <= labels.max() < len(class_names):
            raise formats.FormatError(
                f"its {part} labels are outside 0..{len(class_names) - 1}"
            )
    if len(class_names) != info.num_classes:
        raise formats.FormatError(
            f"it names {len(class_names)} classes, not {info.num_classes}"
        )
