"""Reading images people bring: any upload, safely, into a small RGB or L picture.

Hostile or broken files (decompression bombs, truncated data, formats we do not decode)
raise `ImageError` with one sentence naming the file; big ones are shrunk while they are
read, so a small file that decodes to gigapixels cannot take the server's memory.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from cnn.errors import ImageError

MAX_PIXELS = 50_000_000  # larger images are refused: a few bytes can claim gigapixels
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # Pillow plugins we let decode
DISPLAY_MAX_SIDE = 1024  # classify_files keeps originals this small, for display only

_NOT_AN_IMAGE = "is not an image (PNG, JPEG, WebP, GIF, BMP or TIFF expected)"
# Magic numbers of the formats we read: such a file Pillow cannot identify is damaged.
_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
LUMA_601 = np.array([0.299, 0.587, 0.114])  # what PIL's convert("L") uses
REDUCING_GAP = 3.0  # integer box-reduce down to 3x the target, then LANCZOS: fast and sharp


def read_image(
    source: bytes | str | Path, name: str | None = None, *, max_side: int | None = None
) -> Image.Image:
    """Decode an upload into a fully loaded RGB or L image, upright, first frame only.

    Args:
        source: the file's bytes, or a path.
        name: how messages call the file (default: the path's name, or "The file").
        max_side: shrink so the longer side is at most this (None: keep the full size,
            which a server must never do with uploads);
            JPEGs then decode at a reduced scale (`Image.draft`), several times faster for
            big photos, and other formats are box-reduced before any conversion.

    Raises:
        ImageError: not an image, unsupported format, damaged, empty or too big.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        label = name or path.name
        if not path.exists():
            raise ImageError(f"{label} does not exist.")
        if path.is_dir():
            raise ImageError(f"{label} is a folder, not an image file.")
        data = path.read_bytes()
    else:
        label = name or "The file"
        data = bytes(source)
    if not data:
        raise ImageError(f"{label} is empty (0 bytes).")

    # Only decoding untrusted bytes is guarded this broadly: Pillow's plugins raise many
    # exception types on hostile input (OSError, SyntaxError, ValueError, struct.error, ...).
    with _DECODING:
        try:
            with warnings.catch_warnings():
                # Pillow only warns between its two limits; make that an error we can catch.
                # catch_warnings swaps the process-wide filter list (not thread-safe before
                # Python 3.14); at worst another thread briefly sees this stricter filter.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data), formats=FORMATS)
                _check_size(image.size, label)
                if max_side is not None:
                    image.draft(image.mode, _fit_inside(image.size, max_side))
                image.load()
                # Shrink before anything else: converting a 7000×7000 16-bit PNG at full
                # size took 1.2 GB; reduced first it takes a few MB more than the decode.
                if max_side is not None:
                    image = _box_reduce(image, max_side)
                image = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(
                f"{label} is too large (more than {MAX_PIXELS / 1e6:g} megapixels are refused)."
            ) from exc
        except Image.UnidentifiedImageError as exc:
            raise ImageError(f"{label} {_unsupported_kind(data)}.") from exc
        except ImageError:
            raise
        except MemoryError as exc:
            raise ImageError(f"{label} is too large to open on this computer.") from exc
        except Exception as exc:
            raise ImageError(f"{label} is damaged or incomplete and cannot be read.") from exc

        _check_size(image.size, label)
        image = to_rgb_or_l(image, label)
        if max_side is not None and max(image.size) > max_side:
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS,
                            reducing_gap=REDUCING_GAP)
    return image


def _box_reduce(image: Image.Image, max_side: int) -> Image.Image:
    """Average whole blocks of pixels down to at most REDUCING_GAP × `max_side` (exact and
    cheap; the final LANCZOS resize happens after the colour conversion)."""
    factor = int(max(image.size) // (REDUCING_GAP * max_side))
    if factor < 2:
        return image
    if image.mode.startswith("I;16"):
        # Pillow cannot reduce 16-bit images in place: average blocks in numpy, row band by
        # row band, so no full-size 32-bit copy is ever made.
        pixels = np.asarray(image)
        height, width = (pixels.shape[0] // factor) * factor, (pixels.shape[1] // factor) * factor
        out = np.empty((height // factor, width // factor), np.float32)
        for row in range(0, height, factor):
            band = pixels[row:row + factor, :width].astype(np.float32)
            out[row // factor] = band.reshape(factor, -1, factor).mean(axis=(0, 2))
        del pixels
        return _sixteen_bit(out)
    if image.mode in ("P", "1"):
        image = image.convert("RGBA" if image.mode == "P" and "transparency" in image.info
                              else "RGB" if image.mode == "P" else "L")
    try:
        return image.reduce(factor)
    except ValueError:  # a mode Pillow cannot reduce: leave it to thumbnail()
        return image


def _sixteen_bit(pixels: np.ndarray) -> Image.Image:
    """Averaged 16-bit values as an 8-bit L image (the scaling `_high_bit_depth_to_l` does)."""
    return Image.fromarray(np.clip(np.rint(pixels / 257), 0, 255).astype(np.uint8))


# At most two large decodes at once per process: thirty students uploading phone photos
# at the same moment queue for a fraction of a second instead of multiplying the memory.
_DECODING = threading.BoundedSemaphore(2)


def _check_size(size: tuple[int, int], label: str) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label} is too large ({width}x{height} pixels; "
            f"more than {MAX_PIXELS / 1e6:g} megapixels are refused)."
        )


def _fit_inside(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _unsupported_kind(data: bytes) -> str:
    """Finish "NAME ..." for bytes Pillow could not identify, naming common near-misses."""
    head = data[:1024].lstrip().lower()
    if b"<svg" in head or (head.startswith(b"<?xml") and b"svg" in head):
        return "is an SVG drawing, which cannot be read; export it as PNG first"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypavif"):
        return "is a HEIC/AVIF photo, which is not supported; save it as JPEG or PNG first"
    if data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "is damaged or incomplete and cannot be read"
    return _NOT_AN_IMAGE


def to_rgb_or_l(image: Image.Image, label: str = "The image") -> Image.Image:
    """Any Pillow mode -> RGB or L; transparency is flattened onto a contrasting background."""
    mode = image.mode
    if mode in ("RGB", "L"):
        if "transparency" not in image.info:
            return image
        image = image.convert("RGBA" if mode == "RGB" else "LA")
    elif mode == "1":
        return image.convert("L")
    elif mode.startswith("I") or mode == "F":
        return _high_bit_depth_to_l(image)
    elif mode in ("P", "PA"):
        keeps_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if keeps_alpha else "RGB")
    elif mode in ("LA", "La"):
        image = image.convert("LA")
    elif mode in ("RGBA", "RGBa"):
        image = image.convert("RGBA")
    else:  # CMYK, RGBX, YCbCr, HSV, ...
        try:
            return image.convert("RGB")
        except ValueError as exc:
            raise ImageError(f"{label} uses an unsupported colour mode ({mode}).") from exc
    return _flatten(image) if image.mode in ("RGBA", "LA") else image


def _flatten(image: Image.Image) -> Image.Image:
    """Composite RGBA/LA on white or black, whichever the visible content stands out from.

    A drawing saved with a transparent background (black strokes, or white strokes for
    MNIST-like data) would vanish on the wrong background; photo cut-outs land on white.
    """
    alpha = image.getchannel("A")
    if alpha.getextrema() == (255, 255):
        return image.convert("RGB" if image.mode == "RGBA" else "L")
    probe = image.convert("RGBA")
    probe.thumbnail((256, 256))
    pixels = np.asarray(probe, dtype=np.float64)
    weight = pixels[..., 3]
    luma = pixels[..., :3] @ LUMA_601
    content = (luma * weight).sum() / weight.sum() if weight.sum() > 0 else 0.0
    background = 0 if content > 127.5 else 255
    flat = Image.new("RGBA", image.size, (background, background, background, 255))
    flat.alpha_composite(image.convert("RGBA"))
    return flat.convert("RGB" if image.mode == "RGBA" else "L")


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit / float grayscale -> 8-bit L by scaling (PIL's convert clips at 255)."""
    pixels = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        pixels = pixels / 257
    else:  # I or F: guess the range from the values themselves
        top = pixels.max(initial=0)
        if image.mode == "F" and top <= 1.0:
            pixels = pixels * 255
        elif top > 255:
            pixels = pixels / 257
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


