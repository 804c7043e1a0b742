"""Datasets made in the browser, Teachable Machine style: name classes, add examples, build.

A draft is a folder of class folders, the same layout `cnn.own_datasets.add` imports:

    <data_dir>/drafts/<owner>/<name>/<class>/<n>.png

Every example is a small PNG written the moment it is made (to a hidden temp file, then
linked into place under the next free number), so a refresh or a second browser sees
everything and two browsers adding at once never overwrite each other. Each owner (a student's
name, a session key...) has a folder of their own, so students never touch each other's drafts.
The draft itself stays editable after it is built: building only reads it.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from cnn import own_datasets
from cnn.errors import DatasetError, ImageError
from cnn.images import MAX_PIXELS, read_image, to_rgb_or_l
from cnn.store import storage_error

DRAFTS_FOLDER = "drafts"  # <data_dir>/drafts/<owner>/<name>/
CLASS_COUNT_RANGE = (2, 10)
CLASS_NAME_MAX_LENGTH = 40
OWNER_MAX_LENGTH = 64
EXAMPLE_MAX_SIDE = 256  # examples are kept this small: 4x the largest default dataset size
MAX_EXAMPLES_PER_CLASS = 1000
# Characters Windows refuses in file names, so that a downloaded zip unpacks anywhere.
_FORBIDDEN = set('/\\:*?"<>|')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                     *(f"lpt{i}" for i in range(1, 10))}
_OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXAMPLE_PATTERN = re.compile(r"([0-9]{1,9})\.png")


@dataclass(frozen=True)
class Example:
    class_name: str
    name: str  # "<n>.png"
    path: Path

    @property
    def number(self) -> int:
        return int(self.name.split(".")[0])


def drafts_root(data_dir: str | Path, owner: str) -> Path:
    """The folder of `owner`'s drafts."""
    _check_owner(owner)
    return Path(data_dir).expanduser().absolute() / DRAFTS_FOLDER / owner


def list_drafts(data_dir: str | Path, owner: str) -> list[str]:
    """The names of `owner`'s drafts, sorted."""
    root = drafts_root(data_dir, owner)
    try:
        return sorted(p.name for p in root.iterdir()
                      if p.is_dir() and own_datasets.is_valid_name(p.name))
    except OSError:
        return []


def check_class_name(name: object) -> str:
    """The class name as it will be stored (NFC, stripped); DatasetError if it cannot be a
    class folder's name on every computer the zip may go to."""
    if not isinstance(name, str):
        raise DatasetError(f"A class name must be text, not {name!r}.")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise DatasetError("A class name cannot be empty.")
    if len(clean) > CLASS_NAME_MAX_LENGTH:
        raise DatasetError(
            f"The class name {clean[:20]!r}... is too long: at most {CLASS_NAME_MAX_LENGTH} "
            "characters."
        )
    bad = sorted({c for c in clean if c in _FORBIDDEN or unicodedata.category(c)[0] == "C"})
    if bad:
        shown = " ".join(c if c.isprintable() else repr(c)[1:-1] for c in bad)
        raise DatasetError(
            f"The class name {clean!r} cannot contain {shown}: they are not allowed in folder "
            "names."
        )
    if clean.startswith(".") or clean.endswith("."):
        raise DatasetError(f"The class name {clean!r} cannot start or end with a dot.")
    if clean.split(".")[0].casefold() in _WINDOWS_RESERVED:
        raise DatasetError(f"{clean!r} cannot be a class name: Windows reserves it.")
    return clean


class Draft:
    """One draft dataset on disk; every method reads or changes the disk at once."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @property
    def name(self) -> str:
        return self.folder.name

    # --- making, opening, deleting -------------------------------------------------------

    @classmethod
    def create(
        cls, data_dir: str | Path, owner: str, name: str, class_names: Sequence[str]
    ) -> Draft:
        """A new, empty draft `name` of `owner` with these classes (2 to 10).

        Raises DatasetError for a bad or taken name or bad class names; nothing is written.
        """
        own_datasets.check_name(name)
        names = _check_class_list(class_names)
        root = drafts_root(data_dir, owner)
        target = root / name
        # Case-insensitively: on macOS and Windows "Pets" and "pets" are one folder.
        if target.exists() or any(d.casefold() == name.casefold()
                                  for d in list_drafts(data_dir, owner)):
            raise DatasetError(f"You already have a draft called {name!r}; choose another name.")
        staging = None
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".new-{name}-", dir=root))
            os.chmod(staging, 0o755)  # mkdtemp makes it owner-only
            for class_name in names:
                (staging / class_name).mkdir()
            os.rename(staging, target)  # the draft appears whole, with all its classes
            staging = None
        except OSError as error:
            if target.exists():
                raise DatasetError(
                    f"You already have a draft called {name!r}; choose another name."
                ) from None
            raise storage_error(error, target, "create") from error
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
        return cls(target)

    @classmethod
    def open(cls, data_dir: str | Path, owner: str, name: str) -> Draft:
        """`owner`'s draft `name`; DatasetError when there is none."""
        if not own_datasets.is_valid_name(name):
            raise DatasetError(f"There is no draft called {name!r}.")
        folder = drafts_root(data_dir, owner) / name
        if not folder.is_dir():
            raise DatasetError(f"There is no draft called {name!r}.")
        return cls(folder)

    def delete(self) -> None:
        """Remove the draft and all its examples (a rename first: it vanishes at once)."""
        doomed = self.folder.parent / f".deleting-{self.name}-{os.urandom(4).hex()}"
        try:
            os.rename(self.folder, doomed)
        except FileNotFoundError:
            return
        except OSError as error:
            raise storage_error(error, self.folder, "delete") from error
        shutil.rmtree(doomed, ignore_errors=True)

    # --- classes -------------------------------------------------------------------------

    def classes(self) -> list[str]:
        """The class names, sorted as the built dataset will number them."""
        try:
            return sorted(p.name for p in self.folder.iterdir()
                          if p.is_dir() and not p.name.startswith("."))
        except FileNotFoundError:
            raise DatasetError(f"The draft {self.name!r} no longer exists.") from None

    def add_class(self, class_name: str) -> str:
        """Add an empty class; returns its name as stored."""
        existing = self.classes()
        if len(existing) >= CLASS_COUNT_RANGE[1]:
            raise DatasetError(f"A draft has at most {CLASS_COUNT_RANGE[1]} classes.")
        clean = check_class_name(class_name)
        self._check_unique(clean, existing)
        try:
            (self.folder / clean).mkdir()
        except FileExistsError:
            raise DatasetError(f"There is already a class called {clean!r}.") from None
        except OSError as error:
            raise storage_error(error, self.folder / clean, "create") from error
        return clean

    def rename_class(self, old: str, new: str) -> str:
        """Rename a class, keeping its examples; returns the new name as stored."""
        folder = self._class_folder(old)
        clean = check_class_name(new)
        self._check_unique(clean, [c for c in self.classes() if c != folder.name])
        if clean == folder.name:
            return clean
        target = self.folder / clean
        if target.exists() and target.name.casefold() != folder.name.casefold():
            raise DatasetError(f"There is already a class called {clean!r}.")
        try:
            os.rename(folder, target)
        except OSError as error:
            raise storage_error(error, target, "rename") from error
        return clean

    def remove_class(self, class_name: str) -> None:
        """Delete a class and its examples; a draft keeps at least 2 classes."""
        folder = self._class_folder(class_name)
        if len(self.classes()) <= CLASS_COUNT_RANGE[0]:
            raise DatasetError(
                f"A draft needs at least {CLASS_COUNT_RANGE[0]} classes; add another class "
                "before removing this one, or rename it."
            )
        doomed = self.folder / f".deleting-{os.urandom(4).hex()}"
        try:
            os.rename(folder, doomed)
        except OSError as error:
            raise storage_error(error, folder, "delete") from error
        shutil.rmtree(doomed, ignore_errors=True)

    # --- examples ------------------------------------------------------------------------

    def add_example(
        self, class_name: str, image: bytes | Image.Image | np.ndarray, label: str | None = None
    ) -> Example:
        """Save one example (an upload's bytes, a camera photo, a canvas drawing as a PIL image
        or an (H, W[, C]) uint8 array) as the class's next <n>.png, at most 256 px a side.

        Raises ImageError for what cannot be read as an image, DatasetError for an unknown
        class or a full one.
        """
        folder = self._class_folder(class_name)
        picture = _as_image(image, label)
        if len(self.examples(folder.name)) >= MAX_EXAMPLES_PER_CLASS:
            raise DatasetError(
                f"The class {folder.name!r} already has {MAX_EXAMPLES_PER_CLASS} examples, "
                "the most a class of a draft can hold."
            )
        buffer = io.BytesIO()
        picture.save(buffer, "PNG", optimize=False)
        return self._save_next(folder, buffer.getvalue())

    def delete_example(self, class_name: str, example: str | Example) -> None:
        """Delete one example; deleting one that is already gone is not an error."""
        folder = self._class_folder(class_name)
        name = example.name if isinstance(example, Example) else example
        if not isinstance(name, str) or _EXAMPLE_PATTERN.fullmatch(name) is None:
            raise DatasetError(f"{name!r} is not an example of this draft.")
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            raise storage_error(error, folder / name, "delete") from error

    def examples(self, class_name: str) -> list[Example]:
        """The class's examples, oldest first."""
        folder = self._class_folder(class_name)
        found = []
        for path in folder.iterdir():
            if _EXAMPLE_PATTERN.fullmatch(path.name) and path.is_file():
                found.append(Example(folder.name, path.name, path))
        return sorted(found, key=lambda e: e.number)

    def counts(self) -> dict[str, int]:
        """Examples per class, in class order."""
        return {name: len(self.examples(name)) for name in self.classes()}

    # --- out of the draft ----------------------------------------------------------------

    def to_zip_bytes(self) -> bytes:
        """The draft as a zip of <name>/<class>/<n>.png, which `own_datasets.add` takes back."""
        buffer = io.BytesIO()
        # Stored, not deflated: the examples are PNGs already.
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for class_name in self.classes():
                archive.writestr(f"{self.name}/{class_name}/", b"")
                for example in self.examples(class_name):
                    archive.write(example.path, f"{self.name}/{class_name}/{example.name}")
        return buffer.getvalue()

    def build(
        self,
        data_dir: str | Path,
        dataset_name: str | None = None,
        image_size: int | None = None,
        grayscale: bool | None = None,
        test_split: float = own_datasets.DEFAULT_TEST_SPLIT,
        seed: int = 0,
        progress: own_datasets.Progress | None = None,
        replace: bool = False,
    ) -> own_datasets.ImportReport:
        """Store the draft as an own dataset (default: named like the draft), through
        `own_datasets.add`: the same checks, and at least MIN_IMAGES_PER_CLASS per class."""
        return own_datasets.add(
            dataset_name or self.name,
            self.folder,
            data_dir,
            image_size=image_size,
            grayscale=grayscale,
            test_split=test_split,
            seed=seed,
            progress=progress,
            replace=replace,
            source_name=f"the draft {self.name!r}",
        )

    # --- helpers -------------------------------------------------------------------------

    def _class_folder(self, class_name: str) -> Path:
        if isinstance(class_name, str):
            clean = unicodedata.normalize("NFC", class_name).strip()
            for stored in self.classes():  # as on disk: HFS+ hands names back decomposed
                if unicodedata.normalize("NFC", stored) == clean:
                    return self.folder / stored
        raise DatasetError(f"The draft {self.name!r} has no class called {class_name!r}.")

    @staticmethod
    def _check_unique(clean: str, existing: Sequence[str]) -> None:
        # Case-insensitively: "Cat" and "cat" are one folder on macOS and Windows.
        if any(c.casefold() == clean.casefold() for c in existing):
            raise DatasetError(f"There is already a class called {clean!r}.")

    def _save_next(self, folder: Path, data: bytes) -> Example:
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".new-", suffix=".png")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
            number = max((e.number for e in self.examples(folder.name)), default=0) + 1
            while True:
                target = folder / f"{number}.png"
                try:
                    # A hard link never replaces an existing file: two browsers adding at
                    # the same moment get two numbers, never one overwritten example.
                    os.link(tmp, target)
                    break
                except FileExistsError:
                    number += 1
                except OSError:  # a file system without hard links: rename, nearly as safe
                    if target.exists():
                        number += 1
                        continue
                    os.replace(tmp, target)
                    tmp = None
                    break
            return Example(folder.name, target.name, target)
        except OSError as error:
            raise storage_error(error, folder / "example.png") from error
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


def _check_owner(owner: object) -> None:
    if not (isinstance(owner, str) and len(owner) <= OWNER_MAX_LENGTH
            and _OWNER_PATTERN.fullmatch(owner)):
        raise DatasetError(
            f"{owner!r} cannot name a drafts folder: use 1 to {OWNER_MAX_LENGTH} letters, "
            "digits, '_' or '-'."
        )


def _check_class_list(class_names: Sequence[str]) -> list[str]:
    low, high = CLASS_COUNT_RANGE
    if isinstance(class_names, str) or not low <= len(class_names) <= high:
        raise DatasetError(f"A draft needs {low} to {high} classes.")
    clean: list[str] = []
    for name in class_names:
        name = check_class_name(name)
        Draft._check_unique(name, clean)
        clean.append(name)
    return clean


def _as_image(image: bytes | Image.Image | np.ndarray, label: str | None) -> Image.Image:
    """Any example, as read_image reads uploads: upright, RGB or L, at most 256 px a side;
    grey RGB (a drawing on a grey canvas) is stored as L, a third of the size."""
    label = label or "The example"
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[2] not in (1, 3, 4)
        ):
            raise ImageError(f"{label} is not an image array (uint8, H x W x 1, 3 or 4).")
        image = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[2] == 1
                                else image)
    if isinstance(image, Image.Image):
        # Already decoded (a canvas, a camera frame): the same rules as read_image's, without
        # encoding a possibly large picture only to decode it again.
        if image.width * image.height > MAX_PIXELS:
            raise ImageError(f"{label} is too large ({image.width}x{image.height} pixels).")
        picture = to_rgb_or_l(image, label)
        if max(picture.size) > EXAMPLE_MAX_SIDE:
            picture = picture.copy()
            picture.thumbnail((EXAMPLE_MAX_SIDE, EXAMPLE_MAX_SIDE), Image.Resampling.LANCZOS)
    else:
        picture = read_image(image, label, max_side=EXAMPLE_MAX_SIDE)
    if picture.mode == "RGB":
        pixels = np.asarray(picture)
        if int(np.ptp(pixels, axis=2).max(initial=0)) <= own_datasets.GREY_TOLERANCE:
            picture = picture.convert("L")
    return picture
