"""The datasets the playground trains on: which there are, where their files are, how to
install (download what is missing) and load them, and how to split them.

What each dataset is lives in its record (`cnn.dataset_catalog.DatasetInfo`); the built-in
records and users' own datasets (`cnn.own_datasets`) are one registry here. Files are kept
in the layout of Keras's cache, so a ~/.keras/datasets filled by
`keras.datasets.<name>.load_data()` is used as it is. Images stay uint8 (N, H, W, C) in
memory (CIFAR-10 is 150 MB that way, 600 MB as float32): scaling is the model's job.
Every problem a user can fix raises `DatasetError` with a sentence saying what to do.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnn import dataset_formats as formats
from cnn import download
from cnn.dataset_catalog import (BUILT_IN, DEFAULT_DATASET, DatasetInfo, Framing, Layout,
                                 RemoteFile, digits_path)
from cnn.errors import ConfigError, DatasetError
from cnn.store import storage_error

Progress = Callable[[int, int | None], None]
DATASETS = BUILT_IN  # the built-in records, by name (users' own: `registry`)
OFFLINE_ENV = "CNN_OFFLINE"  # set (to anything) to never download

__all__ = ["DATASETS", "DEFAULT_DATASET", "DatasetInfo", "Framing", "Layout", "RemoteFile",
           "Dataset", "Splits", "registry", "get_info", "data_dirs", "locate", "is_available",
           "install", "load", "split"]


def registry(data_dir: str | Path | None = None) -> dict[str, DatasetInfo]:
    """Every dataset by name: the built-in ones, then users' own (found in the data
    folders; a damaged one is left out and listed by `cnn.own_datasets`)."""
    found = dict(BUILT_IN)
    from cnn import own_datasets

    for info in getattr(own_datasets, "records", lambda dirs: [])(data_dirs(data_dir)):
        found.setdefault(info.name, info)
    return found


def get_info(name: str, data_dir: str | Path | None = None) -> DatasetInfo:
    """The registry entry for `name`; DatasetError listing the known names otherwise."""
    if isinstance(name, str) and name in BUILT_IN:
        return BUILT_IN[name]
    known = registry(data_dir)
    try:
        return known[name]
    except (KeyError, TypeError):
        raise DatasetError(
            f"There is no dataset called {name!r}; choose one of {', '.join(known)}."
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
    info = get_info(name, data_dir)
    if name == "digits":
        return digits_path()
    for root in data_dirs(data_dir):
        for layout in info.layouts:
            found = layout.find(root)
            if found is not None:
                return found
    return None


def is_available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether dataset `name` can be loaded without downloading."""
    return locate(name, data_dir) is not None


def install(
    name: str, data_dir: str | Path | None = None, progress: Progress | None = None
) -> Path:
    """Fetch what is missing of dataset `name`; return where it now is (as `locate` would).

    Does nothing when the dataset is already here. Files go to the first writable folder of
    `data_dirs(data_dir)`, each written whole or not at all (see `cnn.download.download_file`);
    the CIFAR tarballs are kept as they are. `progress(bytes_done, bytes_total_or_None)`
    counts over all files of the dataset and may raise to cancel.
    """
    info = get_info(name, data_dir)
    found = locate(name, data_dir)
    if found is not None:
        return found
    if not info.files:
        raise DatasetError(_missing_message(info, Path(), ()))
    target = writable_data_dir(data_dir)
    if target is None:
        folders = ", ".join(str(folder) for folder in data_dirs(data_dir))
        raise DatasetError(
            f"{info.title} is not on this computer and cannot be downloaded: "
            f"none of these folders can be written to: {folders}."
        )
    files = _missing_files(info, target)
    if os.environ.get(OFFLINE_ENV):
        # Offline mode (a classroom without Wi-Fi, the test suite): never touch the network.
        raise DatasetError(_missing_message(info, target, files))
    sizes = [file.size for file in files]
    completed = 0
    for index, file in enumerate(files):
        report = None
        if progress is not None:
            report = _counting_all_files(progress, completed, sizes[index], sizes[index + 1 :])
        try:
            download.download_file(file.url, target / file.path, file.checksums, report)
        except download.NetworkError as error:
            raise DatasetError(
                _missing_message(info, target, files[index:], str(error))) from error
        except download.ChecksumError as error:
            raise DatasetError(
                f"The download of {file.url} arrived damaged ({error}), so it was not kept; "
                f"try again later, or put {Path(file.path).name} in {(target / file.path).parent} "
                "yourself."
            ) from error
        except OSError as error:
            raise DatasetError(str(storage_error(error, target / file.path))) from error
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


# Datasets a warm worker loaded ahead of time: name -> ((path, mtime), Dataset).
_KEPT: dict[str, tuple[tuple, Dataset]] = {}


def load(
    name: str,
    data_dir: str | Path | None = None,
    download_missing: bool = True,
    progress: Progress | None = None,
    keep: bool = False,
) -> Dataset:
    """Dataset `name` from this computer, downloading it first when missing and allowed.

    Raises DatasetError when it is missing and cannot (or may not) be downloaded, and when
    its files are damaged. `keep=True` keeps it in this process for later calls (a warm
    worker loads the next run's dataset ahead of time).
    """
    info = get_info(name, data_dir)
    path = locate(name, data_dir)
    if path is not None and name in _KEPT and _KEPT[name][0] == _version(path):
        # Kept by this process (a warm worker): a copy of the record, the same arrays
        # (nobody writes into them; training replaces its own references).
        return dataclasses.replace(_KEPT[name][1])
    if path is None:
        if not download_missing:
            target = writable_data_dir(data_dir) or data_dirs(data_dir)[0]
            files = _missing_files(info, target) or info.files
            raise DatasetError(_missing_message(info, target, files))
        path = install(name, data_dir, progress)
    try:
        arrays, named = info.read(path)
        class_names = tuple(named) if named is not None else info.class_names
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
    dataset = Dataset(info, x_train, y_train, x_test, y_test)
    if keep:
        _KEPT.clear()  # one at a time: a warm worker keeps the next run's dataset only
        _KEPT[name] = (_version(path), dataclasses.replace(dataset))
    return dataset


def _version(path: Path) -> tuple:
    try:
        return (str(path), path.stat().st_mtime_ns)
    except OSError:
        return (str(path), None)


@dataclass
class Splits:
    """Train/validation/test arrays for one training run; images uint8, labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray  # held out of the official training set
    y_val: np.ndarray
    x_test: np.ndarray  # the official test set, untouched, for the final evaluation
    y_test: np.ndarray


def usable_train_size(info: DatasetInfo, params) -> int | None:
    """The training subset `params` asks for, or None for "all of them": a subset at least
    as large as what the validation split leaves (the `fast` preset on digits) means all."""
    available = info.train_size - round(params.validation_split * info.train_size)
    if params.train_size is None or params.train_size >= available:
        return None
    return params.train_size


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


def writable_data_dir(data_dir: str | Path | None = None) -> Path | None:
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


def _missing_files(info: DatasetInfo, target: Path) -> list[RemoteFile]:
    return [
        file
        for file in info.files
        if formats.find_file((target / file.path).parent, Path(file.path).name) is None
    ]


def _missing_message(info: DatasetInfo, target: Path, files,
                     reason: str | None = None) -> str:
    # "CIFAR-10 is not on this computer and it cannot be downloaded now (Connection refused).
    #  Put cifar-10-python.tar.gz (from https://...) in /home/me/.keras/datasets."
    if info.name == "digits":  # nothing to download, scikit-learn brings it
        return (
            f"{info.title} comes with scikit-learn, which is not installed "
            "(pip install scikit-learn)."
        )
    if not files:
        return (f"{info.title} is not on this computer any more (it was made from your own "
                "images): add it again on the Data page.")
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
