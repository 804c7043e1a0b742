"""Everything about a dataset in one record, and the records of the built-in datasets.

A `DatasetInfo` says what a dataset is (title, classes, image shape, source, licence), how
to show and feed it (light-on-dark, how drawings are framed to look like it, whether a
mirrored image keeps its class), where its files may be in a data folder (`layouts`), what
to download when they are missing (`files`) and how to read them (`read`). Adding a
dataset is adding one record; users' own datasets are records made from their folder.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnn import dataset_formats as formats

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# A reader gets the path `locate` found and returns the arrays and, when the files name
# them, the class names (CIFAR-100's meta); None keeps the record's own.
Reader = Callable[[Path], tuple[Arrays, "tuple[str, ...] | None"]]


@dataclass(frozen=True)
class Framing:
    """Where a light-on-dark dataset puts its content, so that user drawings match it."""

    content_fraction: float  # the content's bounding box is scaled to fit this share of a side
    centre: str  # "mass": centre of mass at the middle (MNIST); "box": bounding box centred


@dataclass(frozen=True)
class RemoteFile:
    """A file `datasets.install` can download."""

    path: str  # where it goes, relative to a data folder
    url: str
    checksums: tuple[str, ...] = ()  # "md5:<hex>" / "sha256:<hex>"; all must match
    size: int | None = None  # bytes, for a progress total before the server answers


@dataclass(frozen=True)
class Layout:
    """A place a dataset may be, relative to a data folder: a folder counts only when it
    holds all of `needs` (a half-extracted folder does not), a single file when it exists."""

    path: str
    needs: tuple[str, ...] = ()

    def find(self, root: Path) -> Path | None:
        target = root / self.path
        if not self.needs:
            return target if target.is_file() else None
        if target.is_dir() and all(formats.find_file(target, name) for name in self.needs):
            return target
        return None


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: what it is, where its files are, how to read them."""

    name: str  # registry key, e.g. "cifar10"
    title: str  # display name, e.g. "CIFAR-10"
    class_names: tuple[str, ...]  # index = label
    image_shape: tuple[int, int, int]  # (height, width, channels) as the network sees it
    train_size: int  # images in the official training set
    test_size: int  # images in the official test set
    source: str  # who made it, and where it comes from
    licence: str
    description: str  # one or two sentences for the UI
    read: Reader = field(repr=False, compare=False)
    light_on_dark: bool = False  # white strokes on black: user drawings are inverted to match
    framing: Framing | None = None  # light-on-dark: how content sits in the frame
    mirror_safe: bool = True  # a mirrored image keeps its class (photos: yes; digits: no)
    layouts: tuple[Layout, ...] = ()  # searched in order in each data folder
    files: tuple[RemoteFile, ...] = ()  # what to download when missing (none: cannot be)
    own: bool = False  # made by a user (cnn.own_datasets), not built in

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.image_shape[2]


# --- the built-in datasets ---------------------------------------------------------------
_KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_CIFAR_SOURCE = ("Alex Krizhevsky, Vinod Nair and Geoffrey Hinton, University of Toronto: "
                 "https://www.cs.toronto.edu/~kriz/cifar.html")
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

# Framings of the light-on-dark datasets. MNIST's is documented (LeCun et al.): the digit's
# box scaled to fit 20x20, aspect kept, its centre of mass at the centre of 28x28. The
# others were measured on their test sets: Fashion-MNIST items fill the frame on their
# longer side (median 28 of 28, 5th percentile 27) with the box centred to 0.5 px, while
# their centre of mass strays up to 3.4 px; scikit-learn's digits are all 32 of 32 tall,
# box centred vertically to 0 px.
MNIST_FRAMING = Framing(20 / 28, "mass")
FILL_FRAMING = Framing(1.0, "box")


def _cifar_layouts(folder: str, needs: tuple[str, ...], tarball: str) -> tuple[Layout, ...]:
    stem = tarball.split(".")[0]
    return (
        Layout(folder, needs),  # extracted by hand, or by Keras 2
        Layout(f"{folder}-target/{folder}", needs),  # Keras 3 get_file(extract=True) today
        Layout(f"{folder}/{folder}", needs),  # earlier Keras 3 releases
        Layout(f"{stem}_extracted/{folder}", needs),  # get_file("<tarball>", extract=True)
        Layout(tarball),  # what `install` keeps: read in place, never extracted
        Layout(f"{folder}.tar.gz"),  # Keras 2 get_file(untar=True)
        Layout(f"{folder}-target_archive"),  # the tarballs Keras 3 keeps beside its folders
        Layout(f"{folder}_archive"),
    )


def _read_idx_or_npz(path: Path):
    # mnist/ or fashion-mnist/ with idx files, or Keras's mnist.npz
    return (formats.load_idx_folder(path) if path.is_dir() else formats.load_mnist_npz(path)), None


def _read_cifar100(path: Path):
    arrays, class_names = formats.load_cifar100(path)
    return arrays, class_names


def digits_path() -> Path | None:
    """Where scikit-learn keeps its digits, found without importing scikit-learn (slow)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


# Checksums: the CIFAR homepage's md5 and the sha256 Keras checks (keras/src/datasets/*.py).
# Keras publishes none for Fashion-MNIST, and its copy is not promised to be byte-identical
# to Zalando's (whose md5s are known), so those files are checked only for length here and
# by the idx parser when loading.
BUILT_IN: dict[str, DatasetInfo] = {info.name: info for info in (
    DatasetInfo(
        name="cifar10",
        title="CIFAR-10",
        class_names=("airplane", "automobile", "bird", "cat", "deer",
                     "dog", "frog", "horse", "ship", "truck"),
        image_shape=(32, 32, 3),
        train_size=50_000,
        test_size=10_000,
        source=_CIFAR_SOURCE,
        licence=_CIFAR_LICENCE,
        description="60,000 small colour photos in 10 classes: vehicles and animals. "
        "Hard enough that a CNN clearly beats a plain dense network.",
        read=lambda path: (formats.load_cifar10(path), None),
        layouts=_cifar_layouts(formats.CIFAR10_FOLDER, formats.CIFAR10_FILES,
                               "cifar-10-python.tar.gz"),
        files=(RemoteFile(
            "cifar-10-python.tar.gz", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            ("md5:c58f30108f718f92721af3b95e74349a",
             "sha256:6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
            170_498_071),),
    ),
    DatasetInfo(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        image_shape=(28, 28, 1),
        train_size=60_000,
        test_size=10_000,
        source="Zalando Research, https://github.com/zalandoresearch/fashion-mnist "
        f"(Keras's copy: {_KERAS_ORIGIN})",
        licence="MIT",
        description="70,000 grayscale 28x28 pictures of clothes and shoes in 10 classes. "
        "A harder drop-in replacement for MNIST.",
        read=_read_idx_or_npz,
        light_on_dark=True,
        framing=FILL_FRAMING,
        layouts=(Layout("fashion-mnist", formats.IDX_FILES),),
        files=tuple(RemoteFile(f"fashion-mnist/{name}", _KERAS_ORIGIN + name, (), size)
                    for name, size in zip(formats.IDX_FILES,
                                          (26_421_880, 29_515, 4_422_102, 5_148))),
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
        description="70,000 handwritten digits, 28x28 grayscale. "
        "The classic first CNN: 99% test accuracy is within reach.",
        read=_read_idx_or_npz,
        light_on_dark=True,
        framing=MNIST_FRAMING,
        mirror_safe=False,
        layouts=(Layout("mnist.npz"), Layout("mnist", formats.IDX_FILES)),
        files=(RemoteFile(
            "mnist.npz", _KERAS_ORIGIN + "mnist.npz",
            ("sha256:731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",),
            11_490_434),),
    ),
    DatasetInfo(
        name="cifar100",
        title="CIFAR-100",
        class_names=tuple(_CIFAR100_CLASSES),
        image_shape=(32, 32, 3),
        train_size=50_000,
        test_size=10_000,
        source=_CIFAR_SOURCE,
        licence=_CIFAR_LICENCE,
        description="Like CIFAR-10 but with 100 classes, so only 500 training photos "
        "per class: much harder.",
        read=_read_cifar100,
        layouts=_cifar_layouts(formats.CIFAR100_FOLDER, formats.CIFAR100_FILES,
                               "cifar-100-python.tar.gz"),
        files=(RemoteFile(
            "cifar-100-python.tar.gz",
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            ("md5:eb9058c3a382ffc7106e4002c42a8d85",
             "sha256:85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"),
            169_001_437),),
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
        description="1,797 tiny 8x8 handwritten digits that come with scikit-learn, "
        "upscaled to 32x32. Needs no download and trains in seconds.",
        read=lambda path: (formats.load_digits(), None),
        light_on_dark=True,
        framing=FILL_FRAMING,
        mirror_safe=False,
        # Not in a data folder: scikit-learn brings it (see `digits_path`).
    ),
)}
DEFAULT_DATASET = "cifar10"
