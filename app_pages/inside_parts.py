"""The Inside page's parts: the cached explainer, the page's URL, choosing the image, and
each panel (where it looked, the layers, the image flowing through them, the filters). Also
(`app_pages.inside_live`: the Train page's "inside the network now" while a run trains.)

Everything shown is computed by `cnn.explain`; this module only lays it out and words it
for a student. User-given strings (class, file and run names) pass `common.md`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app_pages import common, network_diagram
from app_pages.inside_pictures import (MAP_TILE, MAPS_SHOWN, SIDE, diagram_blocks,  # noqa: F401
                                      filter_picture)
from app_pages.inside_live import show  # noqa: F401  (the page calls parts.show)
from cnn import datasets, explain, inference, runs
from cnn.errors import CnnError
from cnn.images import DISPLAY_MAX_SIDE, read_image

# Session-state keys of the page.
RUN = "inside_run"
SOURCE = "inside_source"
TEST = "inside_test"  # (dataset name, index) of the test image shown
CLASS = "inside_class"  # the class the maps explain: None = the network's own answer
UPLOAD = "inside_upload"
CANVAS = "inside_canvas"
ALL_MAPS = "inside_all_maps"
SYNCED = "inside_synced"  # the query parameters the page wrote last (to tell a new link)

PASSED, TEST_IMAGE, UPLOADED, DRAWN = "passed", "test", "upload", "draw"
SOURCE_LABELS = {PASSED: ":material/arrow_back: The image you sent",
                 TEST_IMAGE: ":material/casino: Test image",
                 UPLOADED: ":material/upload: Upload", DRAWN: ":material/draw: Draw"}
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
FURTHER_VIEWS = (explain.GRADCAM, explain.HIRESCAM, explain.SMOOTHGRAD)


# --- the network, cached per model file version --------------------------------------------
@dataclass
class Inside:
    """A model's explainer and its filters as pictures (they do not depend on the image)."""

    explainer: explain.Explainer
    filter_pictures: list[tuple[str, bytes, str]]  # (layer, PNG, caption) per conv layer
    # The architecture diagram's Vega-Lite spec: Altair takes ~50 ms to make one.
    architecture: dict


_TRACING = threading.Lock()


def methods(explainer: explain.Explainer) -> list[str]:
    """Every "where it looked" map this network has (the CAMs need a conv layer), the
    default first."""
    return [explain.DEFAULT_METHOD, *(m for m in FURTHER_VIEWS
                                      if explainer.cam_layer or m == explain.SMOOTHGRAD)]


@st.cache_resource(show_spinner="Opening up the network…", max_entries=4)
def _inside(model_id: int, _model) -> Inside:
    # Keyed by the model object's id: the Inside keeps its model alive, so while it is
    # cached no other object can have that id. common.load_model gives a new model object
    # for each new version of the file.
    with _TRACING:
        explainer = explain.Explainer(_model)
        # Trace its TensorFlow functions here, one model at a time: traced at the first
        # explain() instead, two script runs at once (Streamlit starts a rerun while the
        # last one finishes) failed in the browser test (autograph: "missing 1 required
        # positional argument: 'class_index'"). Traced once, calls may overlap freely.
        explainer.explain(np.zeros(explainer.image_shape, np.uint8), None, methods(explainer))
    diagram = network_diagram.architecture(diagram_blocks(explainer.layers, explainer.image_shape))
    return Inside(explainer, [filter_picture(f, first=i == 0) for i, f in
                              enumerate(explainer.filters().values())], diagram.to_dict())


def inside(run: runs.Run) -> Inside:
    """The run's Inside (CnnError when its model cannot be loaded)."""
    model = common.load_model(run)
    return _inside(id(model), model)


def apply_link(candidates: list[runs.Run]) -> str | None:
    """Put what the URL (or another page's "why?" button) asks for into the page's state.
    Returns one readable sentence when part of it cannot be shown, else None."""
    passed = st.session_state.get(common.INSIDE_IMAGE)
    if passed and passed.get("fresh"):  # just sent from Classify or Evaluate
        passed["fresh"] = False
        st.session_state[SOURCE] = PASSED if passed.get("test") is None else TEST_IMAGE
        st.session_state.pop(CLASS, None)
    params = st.query_params.to_dict()
    if not params or params == st.session_state.get(SYNCED):
        return None  # nothing asked, or only what the page itself wrote
    by_id = {run.id: run for run in candidates}
    run = by_id.get(params.get("run", ""))
    if "run" in params and run is None:
        return (f"There is no trained network called “{common.md(params['run'])}” here any "
                "more, so the page opens on the newest one.")
    if run is None:
        return None
    st.session_state[RUN] = run.id
    problems = []
    try:
        info = datasets.get_info(run.config.dataset)
    except CnnError:
        return None  # the page itself explains a run it cannot open
    if "test" in params:
        index = params["test"].strip()
        size = test_count(info)
        if size is None:
            problems.append(f"the test images of {common.md(info.title)} are not on this "
                            "computer")
        elif not index.isdigit() or int(index) >= size:
            problems.append(f"“{common.md(index)}” is not a test image number (0 to "
                            f"{size - 1})")
        else:
            st.session_state[TEST] = (info.name, int(index))
            st.session_state[SOURCE] = TEST_IMAGE
    if "class" in params:
        if params["class"] in info.class_names:
            st.session_state[CLASS] = list(info.class_names).index(params["class"])
        else:
            problems.append(f"{common.md(info.title)} has no class “"
                            f"{common.md(params['class'])}”")
    if problems:
        return "This link cannot be followed entirely: " + "; ".join(problems) + "."
    return None


def write_link(run: runs.Run, test_index: int | None, class_name: str | None) -> None:
    """The URL says what is shown, so it can be shared and survives a refresh."""
    params = {"run": run.id}
    if test_index is not None:
        params["test"] = str(test_index)
    if class_name is not None:
        params["class"] = class_name
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[SYNCED] = params


def test_count(info: datasets.DatasetInfo) -> int | None:
    if not datasets.is_available(info.name):
        return None
    return len(common.load_dataset(info.name).x_test)


# --- the image -----------------------------------------------------------------------------
@dataclass
class Picked:
    array: np.ndarray  # uint8 (H, W, C): what the network takes
    title: str  # Markdown-safe
    true_label: str | None = None  # test images: the dataset's label
    test_index: int | None = None


def passed_image(run: runs.Run, shape: tuple[int, ...]) -> dict | None:
    """The image sent from another page, when this network can take it."""
    passed = st.session_state.get(common.INSIDE_IMAGE)
    if not passed or passed.get("array") is None or passed["array"].shape != tuple(shape):
        return None
    return passed


def _random_test(info: datasets.DatasetInfo, size: int) -> None:
    st.session_state[TEST] = (info.name, int(np.random.default_rng().integers(size)))


def choose_image(run: runs.Run, info: datasets.DatasetInfo) -> Picked | None:
    """The source picker and the chosen source's widgets; the image, or None yet."""
    size = test_count(info)
    passed = passed_image(run, info.image_shape)
    options = [s for s, ok in [(PASSED, passed is not None), (TEST_IMAGE, size is not None),
                               (UPLOADED, True), (DRAWN, True)] if ok]
    if st.session_state.get(SOURCE) not in options:
        st.session_state[SOURCE] = options[0]
    # One row: the image sits higher on a 720-pixel projector.
    with st.container(horizontal=True, vertical_alignment="bottom"):
        source = st.segmented_control("Image", options, key=SOURCE, required=True,
                                      format_func=SOURCE_LABELS.get)
        if source == TEST_IMAGE:
            chosen = st.session_state.get(TEST)
            if not chosen or chosen[0] != info.name or chosen[1] >= size:
                _random_test(info, size)
            st.button("Another test image", icon=":material/casino:", key="inside_random",
                      on_click=_random_test, args=(info, size))
    if source == PASSED:
        return Picked(passed["array"], common.md(passed.get("title") or "Your image"))
    if source == TEST_IMAGE:
        index = st.session_state[TEST][1]
        data = common.load_dataset(info.name)
        label = info.class_names[int(data.y_test[index])]
        return Picked(data.x_test[index], f"Test image #{index}", label, index)
    if source == UPLOADED:
        file = st.file_uploader("An image", type=IMAGE_TYPES, key=UPLOAD)
        return None if file is None else prepared(file.name, file.getvalue(), info)
    return drawing(info)


def prepared(name: str, data: bytes, info: datasets.DatasetInfo) -> Picked | None:
    """A file fitted to the network as Classify fits it; an error line if unusable."""
    try:
        image = read_image(data, name, max_side=DISPLAY_MAX_SIDE)
        array = inference.prepare_image(image, info.image_shape, info.light_on_dark,
                                        framing=info.framing).array
    except CnnError as error:
        common.show_error(error)
        return None
    return Picked(array, common.md(name))


def drawing(info: datasets.DatasetInfo) -> Picked | None:
    from streamlit_drawable_canvas import st_canvas

    background, pen = ("#000000", "#FFFFFF") if info.light_on_dark else ("#FFFFFF", "#1F77B4")
    st.caption(f"Draw one of: {common.md(', '.join(info.class_names))}. Big, filling the "
               "square; the bin in the toolbar clears.")
    canvas = st_canvas(stroke_width=24, stroke_color=pen, background_color=background,
                       width=256, height=256, drawing_mode="freedraw", key=CANVAS)
    if canvas.image_data is None or not (canvas.json_data or {}).get("objects"):
        return None
    return prepared("Your drawing", canvas.image_bytes, info)


# --- where it looked -----------------------------------------------------------------------