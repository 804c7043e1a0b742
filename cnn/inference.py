"""Classify images people bring: fit an image to the network, predict, top-k.

Models take raw uint8 pixels (H, W, C) and scale them inside (a Rescaling layer), so what
`prepare_image` returns is exactly what the network gets, and `PreparedImage.as_image()`
is an honest "what the network sees". Reading uploads safely is `cnn.images`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from cnn.dataset_catalog import MNIST_FRAMING, Framing
from cnn.errors import ImageError
from cnn.images import DISPLAY_MAX_SIDE, LUMA_601, REDUCING_GAP, read_image, to_rgb_or_l

if TYPE_CHECKING:
    import keras


# --- fitting to the network ----------------------------------------------------------------


DEFAULT_FRAMING = MNIST_FRAMING  # light-on-dark data of unknown origin: digit-like
# Content is what differs from the background by this share of the largest difference
# (0.1 keeps the soft edges of the datasets' own images: see the tests), and by more than
# NOISE_SIGMAS times the noise of the border, so a photographed paper's grain is not content.
CONTENT_THRESHOLD = 0.1
NOISE_SIGMAS = 6
BLANK_CONTRAST = 32  # nothing differs from the background by more: blank (of 0..255)


@dataclass
class PreparedImage:
    original: Image.Image  # what the user gave, after read_image (for display)
    array: np.ndarray  # uint8 (H, W, C): exactly what the network gets
    inverted: bool  # colours were inverted (dark-on-light input for a light-on-dark dataset)
    blank: bool = False  # light-on-dark only: nothing stands out, so it was fitted, not framed

    def as_image(self) -> Image.Image:
        """The network's view as a PIL image (L or RGB)."""
        return Image.fromarray(self.array[..., 0] if self.array.shape[-1] == 1 else self.array)


def prepare_image(
    image: Image.Image,
    image_shape: tuple[int, int, int],
    light_on_dark: bool = False,
    invert: bool | None = None,
    framing: Framing | None = DEFAULT_FRAMING,
) -> PreparedImage:
    """Fit an image to the network's (H, W, C) keeping its aspect ratio.

    Photo datasets (light_on_dark=False): centre-crop to the target's aspect, then resize,
    as CIFAR frames its objects. Light-on-dark datasets (MNIST-like): frame the content as
    the dataset frames its own (`framing`, its record's; MNIST's by default): crop to
    what differs from the border colour, scale that to fit, place it on the border colour;
    with framing=None (users' own drawings, kept as drawn) the whole image is fitted.
    With invert=None dark-on-light input is inverted (judged by the median of the border
    pixels); invert=True/False forces either way, for any dataset. A light-on-dark image
    with nothing on it is only fitted and padded, and comes back with `blank=True`.
    """
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ValueError(f"image_shape must have 1 or 3 channels, got {image_shape}")
    original = image
    image = to_rgb_or_l(image).convert("L" if channels == 1 else "RGB")
    size = (width, height)
    blank = False

    if light_on_dark:
        border = _border_colour(image)
        if invert is None:
            invert = _luma(border) > 127.5
        # Framed before inverting: content is judged by its distance from the border colour,
        # which inverting leaves unchanged, and LANCZOS commutes with the inversion.
        content = _content_box(image, _luma(border), max(size))
        blank = content is None
        if content is None:
            result = _fit_and_pad(image, size, border)
        elif framing is None:
            result = _crop_and_resize(image, size)
        else:
            result = _frame(image, content, size, border, framing)
    else:
        result = _crop_and_resize(image, size)
    invert = bool(invert)
    if invert:
        result = ImageOps.invert(result)

    array = np.array(result, dtype=np.uint8)
    if array.ndim == 2:
        array = array[..., np.newaxis]
    return PreparedImage(original=original, array=array, inverted=invert, blank=blank)


def _crop_and_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Centre-crop to the target's aspect, then resize, as CIFAR frames its objects."""
    return image.resize(size, Image.Resampling.LANCZOS,
                        box=_centre_crop_box(image.size, size[0] / size[1]),
                        reducing_gap=REDUCING_GAP)


def _fit_and_pad(
    image: Image.Image, size: tuple[int, int], border: tuple[int, ...]
) -> Image.Image:
    """The whole image resized to fit `size`, centred on the border colour."""
    fitted = image.resize(
        _fit_inside_box(image.size, size), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP
    )
    result = Image.new(image.mode, size, _fill(image, border))
    result.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return result


def _content_box(
    image: Image.Image, background: float, target_side: int
) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of what differs from `background` (a luma),
    or None when nothing stands out (by BLANK_CONTRAST, and above the noise)."""
    # On a box-reduced copy at least 4x the target's side: the box stays accurate to a
    # quarter of a target pixel, big photos cost milliseconds, and averaging calms noise.
    factor = max(1, min(image.size) // (4 * target_side))
    probe = image.convert("L").reduce(factor)
    difference = np.abs(np.asarray(probe, dtype=np.float64) - background)
    contrast = difference.max(initial=0.0)
    if contrast < BLANK_CONTRAST:
        return None
    # Robust noise level (1.4826 x median absolute deviation) of the border, which strokes
    # crossing it cannot inflate much: 0 for a clean canvas.
    noise = 1.4826 * np.median(_outer_frame(difference[..., np.newaxis]))
    mask = difference >= max(CONTENT_THRESHOLD * contrast, NOISE_SIGMAS * noise)
    if not mask.any():
        # Strong contrast, but everywhere (a photo, not a drawing on paper): all of it is
        # content, not a blank page.
        return (0, 0, *image.size)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    width, height = image.size
    return (
        int(cols[0]) * factor,
        int(rows[0]) * factor,
        min(width, (int(cols[-1]) + 1) * factor),
        min(height, (int(rows[-1]) + 1) * factor),
    )


def _frame(
    image: Image.Image,
    content: tuple[int, int, int, int],
    size: tuple[int, int],
    border: tuple[int, ...],
    framing: Framing,
) -> Image.Image:
    """The content box scaled to fit `framing.content_fraction` of `size`, aspect kept, and
    placed on a border-coloured frame by `framing.centre`, never sticking out of it."""
    width, height = size
    fit = (
        max(1, round(width * framing.content_fraction)),
        max(1, round(height * framing.content_fraction)),
    )
    patch = image.resize(
        _fit_inside_box((content[2] - content[0], content[3] - content[1]), fit),
        Image.Resampling.LANCZOS,
        box=content,
        reducing_gap=REDUCING_GAP,
    )
    # Whole-pixel offsets: no second resampling blur, and the centre within half a pixel.
    left, top = (width - patch.width + 1) // 2, (height - patch.height + 1) // 2
    if framing.centre == "mass":
        pixels = np.asarray(patch.convert("L"), dtype=np.float64)
        weights = np.abs(pixels - _luma(border))
        total = weights.sum()
        if total > 0:
            rows, cols = np.indices(weights.shape)
            left = round((width - 1) / 2 - (weights * cols).sum() / total)
            top = round((height - 1) / 2 - (weights * rows).sum() / total)
    left = min(max(left, 0), width - patch.width)
    top = min(max(top, 0), height - patch.height)
    result = Image.new(image.mode, size, _fill(image, border))
    result.paste(patch, (left, top))
    return result


def _fill(image: Image.Image, colour: tuple[int, ...]) -> int | tuple[int, ...]:
    return colour[0] if image.mode == "L" else colour


def _centre_crop_box(size: tuple[int, int], aspect: float) -> tuple[float, float, float, float]:
    width, height = size
    if width / height > aspect:
        crop = height * aspect
        return ((width - crop) / 2, 0, (width + crop) / 2, height)
    crop = width / aspect
    return (0, (height - crop) / 2, width, (height + crop) / 2)


def _fit_inside_box(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _border_colour(image: Image.Image) -> tuple[int, ...]:
    """Per-channel median of the outer 5% frame: the paper or canvas colour."""
    # Judge on a box-reduced copy so an 8000x6000 photo costs milliseconds.
    probe = image.reduce(max(1, min(image.size) // 256))
    pixels = np.asarray(probe).reshape(probe.height, probe.width, -1)
    return tuple(int(v) for v in np.rint(np.median(_outer_frame(pixels), axis=0)))


def _outer_frame(pixels: np.ndarray) -> np.ndarray:
    """The outer 5% frame (at least 1 pixel) of (H, W, C) pixels, as (N, C) rows."""
    edge = max(1, round(min(pixels.shape[:2]) * 0.05))
    channels = pixels.shape[-1]
    return np.concatenate(
        [
            pixels[:edge].reshape(-1, channels),
            pixels[-edge:].reshape(-1, channels),
            pixels[:, :edge].reshape(-1, channels),
            pixels[:, -edge:].reshape(-1, channels),
        ]
    )


def _luma(colour: tuple[int, ...]) -> float:
    return float(colour[0]) if len(colour) == 1 else float(np.dot(colour, LUMA_601))


# --- models and predictions ----------------------------------------------------------------


@dataclass
class Prediction:
    labels: list[str]  # top-k class names, best first
    probabilities: list[float]  # their probabilities, same order
    all_probabilities: np.ndarray  # (num_classes,) float64, in class order


def predict(
    model: keras.Model,
    images: np.ndarray | list[np.ndarray],
    class_names: Sequence[str],
    top_k: int = 3,
) -> list[Prediction]:
    """Classify a batch of uint8 (H, W, C) arrays (or one (N, H, W, C) / (H, W, C) array).

    The model is called once, through `predict_on_batch`: its compiled function costs ~20-60 ms
    on the first calls (it traces, then relaxes the batch size), then a 1-image call takes
    ~0.5 ms against ~3 ms for an eager `model(x, training=False)` and ~30 ms for `predict`
    (small CNN, 2 CPU cores). A cached model pays the tracing once.
    """
    batch = _stack(images)
    if batch.shape[0] == 0:
        return []
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    expected = tuple(model.input_shape[1:])
    got = batch.shape[1:]
    if len(expected) != len(got) or any(e not in (None, g) for e, g in zip(expected, got)):
        raise ValueError(f"images have shape {got}, the model expects {expected}")

    probabilities = np.asarray(model.predict_on_batch(batch), dtype=np.float64)
    if probabilities.shape[-1] != len(class_names):
        raise ValueError(
            f"the model has {probabilities.shape[-1]} outputs but {len(class_names)} class names"
        )
    k = min(top_k, len(class_names))
    predictions = []
    for row in probabilities:
        best = np.argsort(-row, kind="stable")[:k]  # ties: lower class index first
        predictions.append(
            Prediction(
                labels=[class_names[i] for i in best],
                probabilities=[float(row[i]) for i in best],
                all_probabilities=row,
            )
        )
    return predictions


def _stack(images: np.ndarray | list[np.ndarray]) -> np.ndarray:
    if isinstance(images, np.ndarray):
        batch = images[np.newaxis] if images.ndim == 3 else images
    else:
        images = list(images)
        if not images:
            return np.zeros((0, 1, 1, 1), np.uint8)
        batch = np.stack([np.asarray(image) for image in images])
    if batch.ndim != 4 or batch.dtype != np.uint8:
        # Models scale inside; a float array here usually means it was already scaled.
        raise ValueError(f"expected uint8 images (N, H, W, C), got {batch.dtype} {batch.shape}")
    return batch


# --- files in, results out -----------------------------------------------------------------


@dataclass
class ClassifiedFile:
    name: str  # the file name as given
    prepared: PreparedImage | None  # None when the file could not be used
    prediction: Prediction | None  # None when the file could not be used
    error: str | None  # the ImageError message, or None on success


def classify_files(
    model: keras.Model,
    sources: Iterable[tuple[str, bytes]],
    image_shape: tuple[int, int, int],
    class_names: Sequence[str],
    light_on_dark: bool,
    top_k: int = 3,
    framing: Framing | None = DEFAULT_FRAMING,
) -> list[ClassifiedFile]:
    """One result per (name, bytes), in order; an unusable file carries its error instead
    of stopping the others. All usable images go through the model in one call. `framing`
    (the dataset record's) says how light-on-dark images are framed, as in `prepare_image`."""
    results = []
    for name, data in sources:
        try:
            image = read_image(data, name, max_side=DISPLAY_MAX_SIDE)
            prepared = prepare_image(image, image_shape, light_on_dark, framing=framing)
        except ImageError as exc:
            results.append(ClassifiedFile(name, None, None, str(exc)))
        else:
            results.append(ClassifiedFile(name, prepared, None, None))
    good = [result for result in results if result.prepared is not None]
    if good:
        arrays = [result.prepared.array for result in good]
        for result, prediction in zip(good, predict(model, arrays, class_names, top_k)):
            result.prediction = prediction
    return results
