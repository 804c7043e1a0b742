"""Classify: show a trained network new images (uploaded, drawn, photographed or picked from
the test set) and see what it answers and what it actually gets to look at."""

import numpy as np
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas

from app_pages import charts, common, inside_link
from cnn import datasets, inference, runs
from cnn.errors import CnnError

RUN = "classify_run"
TOP_K = "classify_top_k"
UPLOADS = "classify_uploads"
CANVAS = "classify_canvas"
DRAWING = "classify_drawing"  # PNG bytes of the drawing to classify (tests inject one here)
STROKES = "classify_strokes"  # (background, canvas JSON): redraws the canvas when it remounts
CANVAS_START = "classify_canvas_start"  # the initial_drawing of the mounted canvas
PEN_WIDTH = "classify_pen_width"
TEST_IMAGE = "classify_test_image"  # (dataset name, index) of the random test image
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
MAX_FILES = 12  # per upload: each is decoded in the shared server
SIDE = 200  # px: how big originals and the network's view are shown
CANVAS_SIDE = 280


def display_copy(image: Image.Image) -> Image.Image:
    """Small images enlarged with crisp pixels, big ones shrunk (less to send)."""
    if max(image.size) < SIDE:
        return common.upscale(image, SIDE)
    image = image.copy()
    image.thumbnail((2 * SIDE, 2 * SIDE))
    return image


def show(title: str, prepared: inference.PreparedImage, prediction: inference.Prediction,
         true_label: str | None = None, narrow: bool = False, why: dict | None = None) -> None:
    """One classified image: the original, what the network sees, its top guesses.

    `title` is Markdown: escape user input (file names) with common.md first. A test image
    is shown once (it is exactly what the network sees); `narrow` puts the chart under the
    pictures, for a half-width column. `why` (key, title, test_index: inside_link.why_button's)
    adds a "Why this answer?" button that opens the Inside page on this image."""
    with st.container(border=True):
        best, probability = prediction.labels[0], prediction.probabilities[0]
        verdict = ""
        if true_label is not None:
            verdict = (" :green[:material/check_circle: right]" if best == true_label
                       else f" :red[:material/cancel: wrong, it is {common.md(true_label)}]")
        st.markdown(f"#### {title}: the network says :orange[**{common.md(best)}**] "
                    f"({probability:.0%} sure){verdict}")
        if prepared.blank:
            st.warning("Nothing stands out from the background, so the network can only "
                       "guess.", icon=":material/visibility_off:")
        height, width, _ = prepared.array.shape
        seen_caption = (f"What the network sees: {width}×{height} pixels"
                        + (", colours inverted" if prepared.inverted else ""))
        pictures = [] if true_label is not None else [(display_copy(prepared.original),
                                                       "Your image")]
        pictures.append((common.upscale(prepared.as_image(), 2 * SIDE), seen_caption))
        if narrow:
            columns = st.columns(2)
        else:
            columns = st.columns([1, 1, 2] if len(pictures) == 2 else [1, 3],
                                 vertical_alignment="center")
        for column, (image, caption) in zip(columns, pictures):
            column.image(image, caption=caption, width="stretch", output_format="PNG")
        (st if narrow else columns[-1]).vega_lite_chart(
            spec=charts.top_k(prediction.labels, prediction.probabilities), width="stretch")
        if why is not None:
            inside_link.why_button("Why this answer?", run_id=run.id, array=prepared.array,
                                   **why)


def show_files(sources: list[tuple[str, bytes]], narrow: bool = False,
               source: str = "upload") -> None:
    """Classify (name, bytes) pairs; a file that cannot be read gets an error naming it,
    and the others are still classified."""
    results = inference.classify_files(model, sources, info.image_shape, class_names,
                                       info.light_on_dark, top_k, framing=info.framing)
    for result in results:
        if result.error:
            st.error(common.md(result.error), icon=":material/broken_image:")
    for i, result in enumerate(results):
        if result.prediction is not None:
            # File names are user input: escaped, so a name can never become Markdown.
            show(common.md(result.name), result.prepared, result.prediction, narrow=narrow,
                 why={"key": f"classify_why_{source}_{i}", "title": result.name})


@st.fragment
def upload_section() -> None:
    files = st.file_uploader(
        "Images to classify", type=IMAGE_TYPES, accept_multiple_files=True, key=UPLOADS,
        help=f"PNG, JPEG, WebP, GIF, BMP or TIFF. Up to {MAX_FILES} at once.")
    if files:
        if len(files) > MAX_FILES:
            st.warning(f"{len(files)} files: the first {MAX_FILES} are classified. Remove some "
                       "to see the others.", icon=":material/filter_list:")
        show_files([(file.name, file.getvalue()) for file in files[:MAX_FILES]])
    else:
        st.caption(f"Photos or drawings of: {common.md(', '.join(class_names))}. Each is shrunk to "
                   f"{info.image_shape[1]}×{info.image_shape[0]} pixels first, as the "
                   "network was trained on.")


@st.fragment
def draw_section() -> None:
    if info.light_on_dark:
        background, pen = "#000000", "#FFFFFF"  # like the training images: light on dark
    else:
        background = "#FFFFFF"
    pad, result_col = st.columns([1, 2], gap="large")
    with pad:
        if not info.light_on_dark:
            pen = st.color_picker("Pen colour", "#1F77B4", key="classify_pen_colour")
        strokes = st.session_state.get(STROKES)
        if strokes and strokes[0] != background:  # drawn for another model's colours
            st.session_state[DRAWING] = st.session_state[STROKES] = strokes = None
        # Also keeps the canvas's hover toolbar (it floats above the canvas) off the tabs.
        st.markdown(f"Draw one of: **{common.md(', '.join(class_names))}**. Big, filling the "
                    "square.")
        if CANVAS not in st.session_state:  # (re)mounting: bring the last drawing back
            st.session_state[CANVAS_START] = strokes[1] if strokes else None
        canvas = st_canvas(
            stroke_width=st.session_state.get(PEN_WIDTH, 24), stroke_color=pen,
            background_color=background,
            width=CANVAS_SIDE, height=CANVAS_SIDE, drawing_mode="freedraw",
            initial_drawing=st.session_state.get(CANVAS_START), return_image_data=True,
            key=CANVAS)
        if canvas.image_bytes is not None:  # the browser sent the canvas (it changed)
            drawn = bool((canvas.json_data or {}).get("objects"))
            st.session_state[DRAWING] = canvas.image_bytes if drawn else None
            st.session_state[STROKES] = (background, canvas.json_data) if drawn else None
        st.caption("Draw with the mouse or a finger; the bin in the toolbar clears.")
        st.slider("Pen width", 6, 50, 24, key=PEN_WIDTH)
        if info.light_on_dark and not run.config.augment_stroke:
            st.caption(":material/lightbulb: Drawings often wrong? Train with the **Drawings** "
                       "preset: it learns from copies turned, zoomed, shifted and drawn with "
                       "other pen widths, and gets far more drawings right.")
    with result_col:
        drawing = st.session_state.get(DRAWING)
        if drawing:
            show_files([("Your drawing", drawing)], narrow=True, source="draw")
        else:
            st.info("What the network makes of your drawing appears here as soon as you lift "
                    "the pen.", icon=":material/draw:")


@st.fragment
def camera_section() -> None:
    if st.toggle("Turn on the camera", key="classify_camera_on",
                 help="The browser asks for permission first. Nothing is stored."):
        photo = st.camera_input("Take a photo", key="classify_camera")
        if photo is not None:
            show_files([("Camera photo", photo.getvalue())], source="camera")
    else:
        st.caption("Hold a drawing on paper or an object up to the camera. Fill the frame "
                   "with it, on a plain background.")


def pick_test_image(size: int) -> None:
    index = int(np.random.default_rng().integers(size))
    st.session_state[TEST_IMAGE] = (info.name, index)


@st.fragment
def test_image_section() -> None:
    if not datasets.is_available(info.name):
        st.info(f"The {common.md(info.title)} test images are not on this computer.")
        return
    data = common.load_dataset(info.name)
    st.button("Pick a random test image", icon=":material/casino:", key="classify_random",
              type="primary",
              on_click=pick_test_image, args=(len(data.x_test),),
              help="An image from the test set: the network never saw it while training.")
    picked = st.session_state.get(TEST_IMAGE)
    if not picked or picked[0] != info.name or picked[1] >= len(data.x_test):
        return
    index = picked[1]
    array = data.x_test[index]
    # A test image is already what the network takes: no preparing, nothing to invert.
    prepared = inference.PreparedImage(original=None, array=array, inverted=False)
    prediction = inference.predict(model, [array], class_names, top_k)[0]
    true_label = class_names[int(data.y_test[index])]
    show(f"Test image #{index} (true class {common.md(true_label)})", prepared, prediction,
         true_label, why={"key": "classify_why_test", "title": f"Test image #{index}",
                          "test_index": index})


# --- the page -------------------------------------------------------------------------------
st.title("🔍 Classify")
# Runs still training have a model too (saved after each epoch): fun to try mid-training.
with_model = [run for run in runs.list_runs() if run.has_model()]
common.require(
    bool(with_model),
    "No trained network yet. Train one first; then come back here and show it your own "
    "images.", common.TRAIN, "Go to Train")

model_col, top_k_col = st.columns([3, 1])
with model_col:
    finished = common.finished_runs()
    run = common.select_run(with_model, RUN, "Trained network",
                            default=finished[0] if finished else None)
try:
    info = datasets.get_info(run.config.dataset)
    model = common.load_model(run)
except CnnError as error:
    common.show_error(error)
    st.stop()
class_names = list(info.class_names)
with top_k_col:
    top_k = st.slider("Guesses shown", 1, min(10, len(class_names)), min(5, len(class_names)),
                      key=TOP_K, help="How many of the most likely classes to list.")
height, width, channels = info.image_shape
st.caption(f"Trained on **{common.md(info.title)}**: {len(class_names)} classes, "
           f"{width}×{height} {'grayscale' if channels == 1 else 'colour'} images.")

upload_tab, draw_tab, camera_tab, test_tab = st.tabs(
    [":material/upload: Upload", ":material/draw: Draw", ":material/photo_camera: Camera",
     ":material/casino: Test image"])
with upload_tab:
    upload_section()
with draw_tab:
    draw_section()
with camera_tab:
    camera_section()
with test_tab:
    test_image_section()
