"""Inference: reading whatever people upload, fitting it to the network, predicting."""

import io
import struct
import warnings
import zlib

import keras
import numpy as np
import pytest
from PIL import Image, ImageDraw
from skimage import data as skdata
from skimage.transform import resize as sk_resize

from cnn import datasets
from cnn.errors import CnnError, ImageError
from cnn.checkpoints import load_model
from cnn.dataset_catalog import FILL_FRAMING, MNIST_FRAMING
from cnn.images import MAX_PIXELS, read_image
from cnn.inference import (
    DEFAULT_FRAMING,
    ClassifiedFile,
    PreparedImage,
    classify_files,
    predict,
    prepare_image,
)

# Each light-on-dark dataset's framing, from its record.
FRAMINGS = {name: info.framing for name, info in datasets.DATASETS.items() if info.framing}


def framing_of(dataset):
    return FRAMINGS.get(dataset, DEFAULT_FRAMING)

PHOTOS = {
    "chelsea": skdata.chelsea,
    "astronaut": skdata.astronaut,
    "coffee": skdata.coffee,
    "rocket": skdata.rocket,
    "camera": skdata.camera,
}
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF", "tif": "TIFF"}
RGB, GRAY = (32, 32, 3), (28, 28, 1)


def encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def luma(rgb):
    return rgb[..., :3] @ np.array([0.299, 0.587, 0.114])


def oracle(pixels, shape):
    """Independent reference: centre-crop to square, skimage anti-aliased resize, 601 luma."""
    pixels = pixels.astype(np.float64)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    small = sk_resize(pixels[top : top + side, left : left + side], shape[:2], anti_aliasing=True)
    return small if shape[2] == 3 else luma(small)[..., None]


def check_prepared(prepared, shape):
    assert isinstance(prepared, PreparedImage)
    assert prepared.array.shape == shape and prepared.array.dtype == np.uint8
    view = prepared.as_image()
    assert view.size == (shape[1], shape[0]) and view.mode == ("RGB" if shape[2] == 3 else "L")
    np.testing.assert_array_equal(np.asarray(view).reshape(shape), prepared.array)


# --- real photos in every format -----------------------------------------------------------


@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("photo", PHOTOS)
def test_photos_match_an_independent_resize(tmp_path, photo, ext):
    pixels = PHOTOS[photo]()
    path = tmp_path / f"{photo}.{ext}"
    Image.fromarray(pixels).save(path, FORMATS[ext])

    image = read_image(path)
    assert image.mode == ("L" if pixels.ndim == 2 and ext != "webp" else "RGB")  # WebP: no gray
    assert image.size == (pixels.shape[1], pixels.shape[0])
    for shape in (RGB, GRAY):
        prepared = prepare_image(image, shape)
        check_prepared(prepared, shape)
        assert prepared.original is image and not prepared.inverted
        # LANCZOS is sharper than skimage's Gaussian anti-aliasing, hence no tighter match;
        # squashing instead of cropping, swapped channels or a flip all fail by far.
        ours, reference = prepared.array.astype(float).ravel(), oracle(pixels, shape).ravel()
        assert np.abs(ours - reference).mean() < 10
        assert np.corrcoef(ours, reference)[0, 1] > 0.98


def test_the_cat_stays_brownish():
    prepared = prepare_image(read_image(encode(Image.fromarray(skdata.chelsea()), "JPEG")), RGB)
    red, green, blue = prepared.array.reshape(-1, 3).mean(axis=0)
    assert red > green > blue and blue > 30


# --- modes and odd variants ----------------------------------------------------------------


def test_rgba_with_transparency_is_composited():
    pixels = np.zeros((40, 40, 4), np.uint8)
    pixels[..., 0] = 200  # a red-ish square, left half opaque, right half fully transparent
    pixels[:, :20, 3] = 255
    image = read_image(encode(Image.fromarray(pixels), "PNG"), "half.png")
    assert image.mode == "RGB"
    # The opaque content is dark (luma 60), so the background is white.
    assert tuple(image.getpixel((5, 5))) == (200, 0, 0)
    assert tuple(image.getpixel((35, 5))) == (255, 255, 255)


def test_half_transparent_pixels_blend_with_the_background():
    pixels = np.zeros((10, 10, 4), np.uint8)
    pixels[..., 3] = 128  # black at half opacity on white -> mid grey
    image = read_image(encode(Image.fromarray(pixels), "PNG"))
    assert abs(image.getpixel((0, 0))[0] - 127) <= 1


@pytest.mark.parametrize("stroke", [0, 255])
def test_transparent_drawings_land_on_a_contrasting_background(stroke):
    # Canvas exports: strokes on a fully transparent background, either colour.
    drawing = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    colour = (stroke, stroke, stroke, 255)
    ImageDraw.Draw(drawing).line([(100, 30), (100, 170)], fill=colour, width=20)
    image = read_image(encode(drawing, "PNG"), "drawing.png")
    assert image.getpixel((100, 100)) != image.getpixel((5, 5))
    prepared = prepare_image(image, GRAY, light_on_dark=True)
    assert prepared.inverted == (stroke == 0)
    assert prepared.array[:3, :3].max() < 10 and prepared.array[14, 14, 0] > 200


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency(fmt):
    palette = Image.new("P", (30, 30), 1)
    palette.putpalette([0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * (256 * 3 - 9))
    ImageDraw.Draw(palette).rectangle([0, 0, 14, 29], fill=2)  # red left half, blue right half
    image = read_image(encode(palette, fmt, transparency=1), f"palette.{fmt.lower()}")
    assert image.mode == "RGB"
    assert tuple(image.getpixel((2, 2))) == (255, 0, 0)
    assert tuple(image.getpixel((25, 2))) == (255, 255, 255)  # transparent blue -> background


def test_cmyk_jpeg_keeps_its_colours():
    cat = Image.fromarray(skdata.chelsea())
    image = read_image(encode(cat.convert("CMYK"), "JPEG", quality=95), "cat-cmyk.jpg")
    assert image.mode == "RGB"
    assert np.abs(np.asarray(image, float) - np.asarray(cat, float)).mean() < 8


def test_16_bit_grayscale_is_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (16, 1))
    raw = Image.fromarray(ramp)
    assert raw.mode == "I;16"
    image = read_image(encode(raw, "PNG"), "ramp16.png")
    assert image.mode == "L"
    np.testing.assert_allclose(np.asarray(image)[0], np.linspace(0, 255, 256), atol=1)


def test_32_bit_integer_tiff_is_scaled():
    ramp = np.tile(np.linspace(0, 65535, 64), (8, 1)).astype(np.int32)
    image = read_image(encode(Image.fromarray(ramp), "TIFF"), "ramp32.tif")
    assert image.mode == "L" and np.asarray(image)[0, -1] == 255 and np.asarray(image)[0, 0] == 0


def test_one_bit_and_la_become_grayscale():
    camera = Image.fromarray(skdata.camera())
    one_bit = read_image(encode(camera.convert("1"), "PNG"), "bw.png")
    assert one_bit.mode == "L" and set(np.unique(one_bit)) <= {0, 255}
    la = camera.convert("LA")
    la.putalpha(255)
    image = read_image(encode(la, "PNG"), "gray-alpha.png")
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), skdata.camera())
    for source in (one_bit, image):
        check_prepared(prepare_image(source, RGB), RGB)


def test_exif_orientation_is_applied():
    # Raw pixels 60 wide, 40 high, with a red block top-left. Orientation 6 means "rotate
    # 90 degrees clockwise to display": upright it is 40 wide, 60 high, block top-right.
    raw = Image.new("RGB", (60, 40), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 15, 15))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = read_image(encode(raw, "JPEG", exif=exif, quality=95), "phone.jpg")
    assert image.size == (40, 60)
    red, _, blue = image.getpixel((35, 5))
    assert red > 200 and blue < 60
    assert image.getpixel((5, 5))[2] > 200


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_use_the_first_frame(fmt):
    frames = [Image.new("RGB", (20, 20), colour) for colour in ("red", "lime", "blue")]
    animated = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(animated)).n_frames == 3
    prepared = prepare_image(read_image(animated, f"anim.{fmt.lower()}"), RGB)
    red, green, blue = prepared.array.reshape(-1, 3).mean(axis=0)
    assert red > 240 and green < 15 and blue < 15


def test_a_very_large_photo(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(skdata.coffee()).resize((6000, 4000)).save(path, quality=85)
    full = read_image(path)
    assert full.size == (6000, 4000)
    shrunk = read_image(path, max_side=1024)
    assert max(shrunk.size) == 1024 and shrunk.size[1] == 683
    a, b = prepare_image(full, RGB).array, prepare_image(shrunk, RGB).array
    assert np.abs(a.astype(int) - b).mean() < 3
    check_prepared(prepare_image(full, GRAY, light_on_dark=True), GRAY)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF"])
def test_a_single_pixel(fmt):
    image = read_image(encode(Image.new("RGB", (1, 1), (200, 100, 50)), fmt), f"dot.{fmt}")
    pixel = np.array(image.getpixel((0, 0)))  # lossy formats shift it a little
    rgb = prepare_image(image, RGB).array
    assert rgb.shape == RGB
    np.testing.assert_allclose(rgb.reshape(-1, 3), np.tile(pixel, (32 * 32, 1)), atol=1)
    gray = prepare_image(image, GRAY).array
    assert gray.shape == GRAY
    np.testing.assert_allclose(gray, luma(pixel), atol=1)


# --- framing and inversion -----------------------------------------------------------------


def stripes(width, height):
    """Red | green | blue thirds, side by side."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 255, 0), (width // 3, 0, 2 * width // 3, height))
    image.paste((0, 0, 255), (2 * width // 3, 0, width, height))
    return image


def test_photos_are_centre_cropped():
    # 300x100: the centre square is exactly the green third (LANCZOS blurs its very edge).
    array = prepare_image(stripes(300, 100), RGB).array
    assert array[..., 1].min() > 230 and array[..., 0].max() < 30 and array[..., 2].max() < 30


def test_light_on_dark_images_are_framed_not_cropped():
    # 280x140, dark grey, two bright strokes near the far left and right ends.
    wide = Image.new("L", (280, 140), 40)
    draw = ImageDraw.Draw(wide)
    draw.rectangle([5, 20, 25, 120], fill=255)
    draw.rectangle([254, 20, 274, 120], fill=255)
    array = prepare_image(wide, GRAY, light_on_dark=True).array[..., 0]
    # The 270x101 content box becomes 20x7 in columns 4..23; the rest is the border colour.
    assert np.abs(array[:10].astype(int) - 40).max() <= 2
    assert np.abs(array[-10:].astype(int) - 40).max() <= 2
    assert np.abs(array[:, :4].astype(int) - 40).max() <= 2
    assert np.abs(array[:, -4:].astype(int) - 40).max() <= 2
    # Both strokes survived (a crop to the centre would have cut them off).
    assert array[11:18, 4].min() > 200 and array[11:18, 23].min() > 200


def digit(ink, paper, size=(280, 280)):
    image = Image.new("L", size, paper)
    ImageDraw.Draw(image).ellipse([80, 50, 200, 230], outline=ink, width=22)  # a zero
    return image


def test_a_black_digit_on_white_is_inverted():
    prepared = prepare_image(digit(ink=0, paper=255), GRAY, light_on_dark=True)
    assert prepared.inverted
    assert prepared.array[:4, :4].max() < 10  # background ~0, like MNIST
    assert prepared.array.max() > 200  # stroke bright
    assert prepared.array[14, 14, 0] < 10  # the hole in the zero is background too


def test_a_white_digit_on_black_is_left_alone():
    prepared = prepare_image(digit(ink=255, paper=0), GRAY, light_on_dark=True)
    assert not prepared.inverted
    assert prepared.array[:4, :4].max() < 10 and prepared.array.max() > 200


def test_a_photographed_digit_on_grey_paper_is_inverted():
    noise = np.random.default_rng(0).normal(0, 8, (280, 280))
    pixels = np.clip(np.asarray(digit(ink=40, paper=190), float) + noise, 0, 255)
    photo = Image.fromarray(pixels.astype(np.uint8)).convert("RGB")
    prepared = prepare_image(photo, GRAY, light_on_dark=True)
    assert prepared.inverted and prepared.array[:4, :4].mean() < 90


def test_inversion_can_be_forced():
    white_on_black, black_on_white = digit(255, 0), digit(0, 255)
    forced = prepare_image(white_on_black, GRAY, light_on_dark=True, invert=True)
    assert forced.inverted and forced.array[0, 0, 0] == 255
    kept = prepare_image(black_on_white, GRAY, light_on_dark=True, invert=False)
    assert not kept.inverted and kept.array[0, 0, 0] == 255
    # Photo datasets never invert on their own, but a forced inversion applies.
    assert not prepare_image(black_on_white, RGB).inverted
    assert prepare_image(black_on_white, RGB, invert=True).array[0, 0].tolist() == [0, 0, 0]


def test_wrong_channel_count_is_a_programming_error():
    with pytest.raises(ValueError):
        prepare_image(Image.new("RGB", (4, 4)), (8, 8, 2))


# --- framing like the dataset ---------------------------------------------------------------
#
# The oracle is the definition itself, computed here with plain numpy: the bounding box of
# the bright pixels and the intensity-weighted centre of mass.



def box_and_mass(array, background=0):
    """(height, width) of the box of pixels > 25% of the peak, and the (row, col) offset of
    the centre of mass from the frame's middle."""
    pixels = np.abs(array[..., 0].astype(float) - background)
    rows, cols = np.nonzero(pixels > 0.25 * pixels.max())
    centre = (np.array(pixels.shape) - 1) / 2
    r, c = np.indices(pixels.shape)
    mass = np.array([(pixels * r).sum(), (pixels * c).sum()]) / pixels.sum()
    return (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1), mass - centre


def drawing(shape, ink=255, paper=0, size=(280, 280), at=(30, 150)):
    """A thick "1" or "7", small (about 90 px tall) and far from the canvas's centre."""
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    x, y = at
    if shape == "1":
        draw.line([(x + 10, y + 15), (x + 30, y)], fill=ink, width=14)
        draw.line([(x + 30, y), (x + 30, y + 90)], fill=ink, width=14)
    else:
        draw.line([(x, y), (x + 60, y)], fill=ink, width=14)
        draw.line([(x + 60, y), (x + 20, y + 90)], fill=ink, width=14)
    return image


@pytest.mark.parametrize("shape", ["1", "7"])
def test_a_small_off_centre_drawing_is_framed_like_mnist(shape):
    prepared = prepare_image(drawing(shape), GRAY, light_on_dark=True, framing=framing_of("mnist"))
    check_prepared(prepared, GRAY)
    assert not prepared.inverted and not prepared.blank
    (height, width), offset = box_and_mass(prepared.array)
    # Its box fits 20x20 as MNIST's do, the longer side (the height here) filling it ...
    assert 19 <= height <= 21 and width < height
    # ... and its centre of mass sits in the middle of the 28x28 frame.
    assert np.abs(offset).max() <= 1
    assert prepared.array.max() > 200 and prepared.array[:3].max() < 10


def test_a_small_drawing_is_plainly_shrunk_without_framing():
    # What the framing fixes: the plain fit leaves the digit tiny and in a corner.
    plain = np.asarray(drawing("7").resize((28, 28), Image.Resampling.LANCZOS))[..., None]
    (height, _), offset = box_and_mass(plain)
    assert height < 12 and np.abs(offset).max() > 5


def test_a_black_drawing_on_white_is_inverted_then_framed():
    white, black = drawing("7"), drawing("7", ink=0, paper=255)
    framed = prepare_image(black, GRAY, light_on_dark=True, framing=framing_of("mnist"))
    assert framed.inverted and not framed.blank
    (height, _), offset = box_and_mass(framed.array)
    assert 19 <= height <= 21 and np.abs(offset).max() <= 1
    # Inverting commutes with the framing: the same picture as for white on black.
    expected = prepare_image(white, GRAY, light_on_dark=True, framing=framing_of("mnist")).array
    assert np.abs(framed.array.astype(int) - expected).max() <= 1


def test_a_drawing_on_noisy_grey_paper_is_framed():
    noise = np.random.default_rng(0).normal(0, 8, (280, 280))
    pixels = np.clip(np.asarray(drawing("1", ink=40, paper=190), float) + noise, 0, 255)
    prepared = prepare_image(Image.fromarray(pixels.astype(np.uint8)), GRAY, light_on_dark=True)
    assert prepared.inverted and not prepared.blank
    # The paper's grain is not content: the box is the digit's, not the whole sheet's.
    paper = np.median(prepared.array[:3])
    (height, width), offset = box_and_mass(prepared.array, background=paper)
    assert 19 <= height <= 21 and width < 16 and np.abs(offset).max() <= 1.5


@pytest.mark.parametrize(
    ("paper", "noise"),
    [(0, 0), (255, 0), (128, 0), (200, 6)],
    ids=["black", "white", "grey", "photo"],
)
def test_a_blank_canvas_is_flagged_not_framed(paper, noise):
    pixels = np.full((280, 280), paper, float)
    pixels += np.random.default_rng(0).normal(0, noise, pixels.shape)
    canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    prepared = prepare_image(canvas, GRAY, light_on_dark=True)
    check_prepared(prepared, GRAY)
    assert prepared.blank
    # The plain fit: a uniform picture of the paper colour, inverted when light.
    expected = 255 - paper if paper > 127.5 else paper
    assert abs(prepared.array.mean() - expected) < 3
    assert not prepare_image(canvas, RGB).blank  # photo datasets never judge emptiness


def test_framing_never_pushes_content_out_of_the_frame():
    # A heavy blob top-left and a thin tail to the bottom-right: centring the mass would
    # need the 20x20 content to move past the frame's edge, so it stops at the edge.
    image = Image.new("L", (280, 280), 0)
    draw = ImageDraw.Draw(image)
    draw.rectangle([20, 20, 100, 100], fill=255)
    draw.line([(100, 100), (260, 260)], fill=255, width=3)
    array = prepare_image(image, GRAY, light_on_dark=True).array[..., 0]
    rows, cols = np.nonzero(array > 60)
    assert rows.min() == cols.min() == 8 and rows.max() == cols.max() == 27


@pytest.mark.parametrize("dataset", [None, "mnist", "fashion_mnist", "digits", "nonsense"])
def test_each_dataset_frames_to_its_own_content_size(dataset):
    framing = framing_of(dataset)
    # Each record says how its content is framed; unknown names get MNIST's.
    expected = FILL_FRAMING if dataset in ("fashion_mnist", "digits") else MNIST_FRAMING
    assert framing == expected
    shape = (32, 32, 1) if dataset == "digits" else GRAY
    prepared = prepare_image(drawing("1"), shape, light_on_dark=True, framing=framing_of(dataset))
    (height, _), offset = box_and_mass(prepared.array)
    assert abs(height - framing.content_fraction * shape[0]) <= 1
    if framing.centre == "mass":
        assert np.abs(offset).max() <= 1


def test_rgb_light_on_dark_is_framed_too():
    prepared = prepare_image(drawing("7").convert("RGB"), RGB, light_on_dark=True)
    gray = prepare_image(drawing("7"), (32, 32, 1), light_on_dark=True).array
    assert np.abs(prepared.array.astype(int) - gray).max() <= 1


def test_photo_datasets_are_never_framed():
    # A small off-centre "7" stays small and off-centre for a photo dataset, whatever the name.
    for dataset in (None, "mnist", "cifar10"):
        prepared = prepare_image(drawing("7"), GRAY, framing=framing_of(dataset))
        assert not prepared.blank and not prepared.inverted
        expected = drawing("7").resize((28, 28), Image.Resampling.LANCZOS, reducing_gap=3.0)
        np.testing.assert_array_equal(prepared.array[..., 0], np.asarray(expected))


def content_boxes(images):
    """Per image: the longer side of the >10%-of-peak box as a share of the frame's side,
    and the (row, col) offset of the box's centre from the frame's middle."""
    fractions, offsets = [], []
    for image in images[..., 0]:
        rows, cols = np.nonzero(image > 0.1 * image.max())
        fractions.append(max(np.ptp(rows), np.ptp(cols)) + 1)
        box_centre = np.array([rows.min() + rows.max(), cols.min() + cols.max()]) / 2
        offsets.append(box_centre - (np.array(image.shape) - 1) / 2)
    return np.array(fractions) / images.shape[1], np.array(offsets)


def reframe(images, dataset):
    return np.stack(
        [
            prepare_image(Image.fromarray(image[..., 0]), image.shape, True, framing=framing_of(dataset)).array
            for image in images
        ]
    )


def nearest_centroid(x_train, y_train):
    """A tiny independent classifier: the nearest class-mean image wins."""
    flat = x_train.reshape(len(x_train), -1).astype(float)
    centroids = np.stack([flat[y_train == c].mean(axis=0) for c in range(10)])

    def classify(images):
        flat = images.reshape(len(images), -1).astype(float)
        return np.argmin(((flat[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    return classify


@pytest.fixture(scope="module")
def digits():
    return datasets.load("digits", download_missing=False)


@pytest.fixture(scope="module")
def fashion():
    import support

    return datasets.load("fashion_mnist", data_dir=support.real_data_folder(),
                         download_missing=False)


def test_the_framings_match_the_real_datasets(digits, fashion):
    # Where the table's numbers come from: the datasets' own content boxes.
    for data, framing in ((digits, FRAMINGS["digits"]), (fashion, FRAMINGS["fashion_mnist"])):
        fractions, offsets = content_boxes(data.x_test[:2000])
        assert np.median(fractions) == framing.content_fraction == 1.0
        assert np.percentile(fractions, 5) > 0.95
        assert np.median(np.abs(offsets), axis=0).max() <= 0.5  # box-centred
    assert np.percentile(np.abs(content_boxes(fashion.x_test[:2000])[1]), 95) <= 0.5


def test_real_digits_come_back_nearly_unchanged(digits):
    x = digits.x_test
    framed = reframe(x, "digits")
    difference = np.abs(framed.astype(int) - x).mean(axis=(1, 2, 3))
    # Scale 1 always (they are all 32 tall); what moves is a horizontal re-centring of at
    # most a few pixels, where the dataset's own centring is only as fine as its 4x4 blocks.
    assert np.median(difference) < 1 and difference.mean() < 12
    assert difference.mean() < np.abs(np.roll(x, 1, axis=2).astype(int) - x).mean()
    classify = nearest_centroid(digits.x_train, digits.y_train)
    assert np.mean(classify(framed) == classify(x)) > 0.93
    # MNIST's framing would shrink them to 23 px: far from what the network learnt.
    assert np.abs(reframe(x[:50], "mnist").astype(int) - x[:50]).mean() > 30


def test_real_fashion_items_come_back_nearly_unchanged(fashion):
    x = fashion.x_test[:2000]
    framed = reframe(x, "fashion_mnist")
    difference = np.abs(framed.astype(int) - x).mean(axis=(1, 2, 3))
    assert np.mean(difference == 0) > 0.75 and difference.mean() < 4
    classify = nearest_centroid(fashion.x_train[:10000], fashion.y_train[:10000])
    assert np.mean(classify(framed) == classify(x)) > 0.97


# --- hostile files -------------------------------------------------------------------------


def png_claiming(width, height):
    """A small valid PNG whose IHDR (with a correct CRC) claims a huge size."""
    small = encode(Image.new("L", (8, 8)), "PNG")
    body = b"IHDR" + struct.pack(">II", width, height) + small[24:29]
    return small[:12] + body + struct.pack(">I", zlib.crc32(body)) + small[33:]


def hostile_files():
    cat = Image.fromarray(skdata.chelsea())
    png, jpeg = encode(cat, "PNG"), encode(cat, "JPEG")
    return {
        "noise.png": np.random.default_rng(1).bytes(4096),
        "empty.png": b"",
        "notes.txt": b"Remember to buy milk.\n",
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "garbage.png": png[:16] + b"\x00garbage" * 64,
        "bomb-900mp.png": png_claiming(30_000, 30_000),  # Pillow's own hard limit
        "bomb-100mp.png": png_claiming(10_000, 10_000),  # where Pillow only warns
        "bomb-64mp.png": png_claiming(8_000, 8_000),  # over our MAX_PIXELS
        "logo.svg": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        "page.html": b"<!DOCTYPE html><html><body><img src=cat.png></body></html>",
        "photo.heic": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64,
    }


@pytest.mark.parametrize("name", list(hostile_files()))
def test_hostile_files_raise_a_readable_image_error(tmp_path, name):
    content = hostile_files()[name]
    path = tmp_path / name
    path.write_bytes(content)
    for source, label in ((content, name), (path, None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ImageError) as error:
                read_image(source, label)
        assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
        message = str(error.value)
        assert message.startswith(name) and message.endswith(".") and "\n" not in message
        assert "Traceback" not in message and "BytesIO" not in message


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("notes.txt", "is not an image (PNG, JPEG, WebP, GIF"),
        ("empty.png", "is empty"),
        ("truncated.jpg", "is damaged or incomplete"),
        ("garbage.png", "is damaged or incomplete"),
        ("logo.svg", "is an SVG drawing"),
        ("photo.heic", "is a HEIC/AVIF photo"),
        ("bomb-100mp.png", f"is too large (more than {MAX_PIXELS / 1e6:g} megapixels"),
        ("bomb-64mp.png", f"is too large (8000x8000 pixels; more than {MAX_PIXELS / 1e6:g}"),
    ],
)
def test_hostile_messages_say_what_is_wrong(name, says):
    with pytest.raises(ImageError) as error:
        read_image(hostile_files()[name], name)
    assert str(error.value).startswith(f"{name} {says}")


def test_missing_path_and_folder(tmp_path):
    with pytest.raises(ImageError, match="nope.png does not exist"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a folder"):
        read_image(tmp_path)


def test_unnamed_bytes_get_a_generic_name():
    with pytest.raises(ImageError, match=r"^The file is empty"):
        read_image(b"")


# --- predict, load_model -------------------------------------------------------------------


CLASSES = ["cat", "dog", "frog"]


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(GRAY, dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    kernel = np.random.default_rng(0).normal(0, 0.2, (28 * 28, 3)).astype("float32")
    model.layers[-1].set_weights([kernel, np.array([0.1, -0.2, 0.05], "float32")])
    return model


def numpy_oracle(model, batch):
    kernel, bias = model.layers[-1].get_weights()
    logits = (batch.reshape(len(batch), -1) / 255.0) @ kernel + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def random_batch(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *GRAY), dtype=np.uint8)


def test_predict_matches_a_hand_computed_dense_layer(tiny_model):
    batch = random_batch(5)
    predictions = predict(tiny_model, list(batch), CLASSES, top_k=2)
    expected = numpy_oracle(tiny_model, batch)
    assert len(predictions) == 5
    for prediction, row in zip(predictions, expected):
        np.testing.assert_allclose(prediction.all_probabilities, row, atol=1e-5)
        assert prediction.all_probabilities.sum() == pytest.approx(1, abs=1e-5)
        order = np.argsort(-row)[:2]
        assert prediction.labels == [CLASSES[i] for i in order]
        assert prediction.probabilities == sorted(prediction.probabilities, reverse=True)
        np.testing.assert_allclose(prediction.probabilities, row[order], atol=1e-5)


def test_predict_accepts_arrays_and_clips_top_k(tiny_model):
    batch = random_batch(4, seed=1)
    as_array = predict(tiny_model, batch, CLASSES, top_k=10)
    assert [len(p.labels) for p in as_array] == [3] * 4
    assert sorted(as_array[0].labels) == sorted(CLASSES)
    single = predict(tiny_model, batch[0], CLASSES)
    assert len(single) == 1 and single[0].labels == as_array[0].labels
    assert predict(tiny_model, [], CLASSES) == []


def test_predict_rejects_misuse(tiny_model):
    with pytest.raises(ValueError, match="uint8"):
        predict(tiny_model, random_batch(1) / 255.0, CLASSES)
    with pytest.raises(ValueError, match="expects"):
        predict(tiny_model, np.zeros((1, 32, 32, 3), np.uint8), CLASSES)
    with pytest.raises(ValueError, match="class names"):
        predict(tiny_model, random_batch(1), ["a", "b"])
    with pytest.raises(ValueError, match="top_k"):
        predict(tiny_model, random_batch(1), CLASSES, top_k=0)


def test_load_model_round_trip(tiny_model, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny_model.save(path)
    loaded = load_model(str(path))
    batch = random_batch(3, seed=2)
    np.testing.assert_allclose(
        predict(loaded, batch, CLASSES)[1].all_probabilities,
        numpy_oracle(tiny_model, batch)[1],
        atol=1e-5,
    )


def test_load_model_refuses_code(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(CnnError, match="lambda.keras contains custom Python code"):
        load_model(path)


def test_load_model_errors(tmp_path):
    with pytest.raises(CnnError, match="does not exist"):
        load_model(tmp_path / "missing.keras")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CnnError, match="garbage.keras is damaged or not a Keras model"):
        load_model(garbage)
    legacy = tmp_path / "old.h5"
    legacy.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(CnnError, match="old.h5 is not a .keras model file"):
        load_model(legacy)
    with pytest.raises(CnnError, match="not a .keras model file"):
        load_model(tmp_path)


# --- classify_files ------------------------------------------------------------------------


def test_classify_files_keeps_going_past_bad_files(tiny_model):
    camera = Image.fromarray(skdata.camera())
    sources = [
        ("camera.png", encode(camera, "PNG")),
        ("broken.jpg", encode(camera, "JPEG")[:500]),
        ("digit.png", encode(digit(0, 255), "PNG")),
        ("notes.txt", b"hello"),
    ]
    results = classify_files(tiny_model, sources, GRAY, CLASSES, light_on_dark=True, top_k=2)
    assert [r.name for r in results] == [name for name, _ in sources]
    good, broken, drawn, text = results
    assert isinstance(good, ClassifiedFile) and good.error is None
    assert good.prepared.array.shape == GRAY and len(good.prediction.labels) == 2
    assert drawn.prepared.inverted
    np.testing.assert_allclose(
        drawn.prediction.all_probabilities,
        numpy_oracle(tiny_model, drawn.prepared.array[None])[0],
        atol=1e-5,
    )
    for bad in (broken, text):
        assert bad.prepared is None and bad.prediction is None
        assert bad.error.startswith(bad.name)
    assert classify_files(tiny_model, [("x.txt", b"x")], GRAY, CLASSES, True)[0].error


def test_classify_files_frames_for_the_dataset(tiny_model):
    sources = [("seven.png", encode(drawing("7"), "PNG"))]
    for dataset in ("mnist", "fashion_mnist"):
        (result,) = classify_files(tiny_model, sources, GRAY, CLASSES, True, framing=framing_of(dataset))
        expected = prepare_image(drawing("7"), GRAY, light_on_dark=True, framing=framing_of(dataset))
        np.testing.assert_array_equal(result.prepared.array, expected.array)
