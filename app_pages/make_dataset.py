"""Make a dataset: name the classes, add examples (drawn, photographed, uploaded), see them
per class, build the dataset and train a CNN on it — Teachable Machine's loop, real CNN.

Every example is a PNG on disk the moment it is made (cnn.dataset_drafts), in the user's own
folder (common.owner()): a refresh or a second browser loses nothing, and students never touch
each other's drafts. This page only holds UI choices in session state.
"""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from app_pages import classroom_ui, common, draft_bar, own_data, visitor
from cnn import classroom, dataset_drafts, datasets
from cnn.dataset_drafts import Draft
from cnn.errors import CnnError

PICK = "make_pick"  # the draft shown (its name), or NEW
NEW = ""  # the "start a new one" choice of PICK
NEW_NAME = "make_new_name"
NEW_CLASSES = "make_new_classes"
CLASS = "make_class"  # the class new examples go to
ROUND = "make_round"  # bumped after each added example: a fresh canvas, camera, uploader
DRAWING = "make_drawing"  # (round, PNG bytes) of the drawing on the canvas (tests inject it)
PEN_WIDTH = "make_pen_width"
NOTICE = "make_notice"  # (kind, Markdown) to show once after a callback
SHOWN_PER_CLASS = 12  # thumbnails per class: the newest; the rest are counted
GRID = 6  # thumbnails per row
CANVAS_SIDE = 280
# White on black, like MNIST: the Classify page then frames and inverts new drawings alike.
INK, PAPER = "#FFFFFF", "#000000"


def notice(kind: str, text: str) -> None:
    st.session_state[NOTICE] = (kind, text)


def next_round() -> None:
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1


def create_draft(data_dir, owner: str) -> None:
    """Form callback: a new draft from the name and the class list (one per line)."""
    name = st.session_state.get(NEW_NAME, "").strip()
    classes = [c for c in st.session_state.get(NEW_CLASSES, "").splitlines() if c.strip()]
    try:
        draft = Draft.create(data_dir, owner, name, classes)
    except CnnError as error:
        notice("error", common.md(error))
        return
    st.session_state[PICK] = draft.name
    st.session_state.pop(CLASS, None)


def add_example(draft: Draft, class_name: str, image, label: str) -> bool:
    try:
        draft.add_example(class_name, image, label)
    except CnnError as error:
        notice("error", common.md(error))
        return False
    return True


def add_photo(draft: Draft, class_name: str, key: str) -> None:
    """Camera callback: each photo taken is an example at once; a fresh camera follows."""
    photo = st.session_state.get(key)
    if photo is not None and add_example(draft, class_name, photo.getvalue(), "The photo"):
        next_round()


def delete_example(draft: Draft, class_name: str, name: str) -> None:
    try:
        draft.delete_example(class_name, name)
    except CnnError as error:
        notice("error", common.md(error))


def remove_class(draft: Draft, class_name: str) -> None:
    try:
        draft.remove_class(class_name)
    except CnnError as error:
        notice("error", common.md(error))


def add_class(draft: Draft, key: str) -> None:
    try:
        st.session_state[CLASS] = draft.add_class(st.session_state.get(key, ""))
        st.session_state[key] = ""
    except CnnError as error:
        notice("error", common.md(error))


def delete_draft(draft: Draft) -> None:
    try:
        draft.delete()
    except CnnError as error:
        notice("error", common.md(error))
    else:
        st.session_state[PICK] = NEW


# --- adding examples -----------------------------------------------------------------------
@st.fragment
def adder(draft: Draft, classes: list[str]) -> None:
    """Pick a class, then draw, photograph or upload examples into it."""
    if st.session_state.get(CLASS) not in classes:
        st.session_state[CLASS] = classes[0]
    class_name = st.segmented_control("Add examples to", classes, key=CLASS, required=True,
                                      format_func=common.md)
    shown = common.md(class_name)  # labels render Markdown: class names are user input
    round_ = st.session_state.get(ROUND, 0)
    draw_tab, camera_tab, upload_tab = st.tabs(
        [":material/draw: Draw", ":material/photo_camera: Camera", ":material/upload: Upload"])
    with draw_tab:
        canvas_key = f"make_canvas_{round_}"
        if canvas_key not in st.session_state:  # a fresh canvas: nothing drawn on it yet
            st.session_state.pop(DRAWING, None)
        canvas = st_canvas(stroke_width=st.session_state.get(PEN_WIDTH, 24), stroke_color=INK,
                           background_color=PAPER, width=CANVAS_SIDE, height=CANVAS_SIDE,
                           drawing_mode="freedraw", return_image_data=True, key=canvas_key)
        if canvas.image_bytes is not None:  # the browser sent the canvas (it changed)
            drawn = bool((canvas.json_data or {}).get("objects"))
            st.session_state[DRAWING] = (round_, canvas.image_bytes) if drawn else None
        drawing = st.session_state.get(DRAWING)
        ready = bool(drawing) and drawing[0] == round_
        if st.button(f"Add this drawing to {shown}", key="make_add_drawing",
                     type="primary", icon=":material/add:", disabled=not ready):
            if add_example(draft, class_name, drawing[1], "The drawing"):
                next_round()
            st.rerun(scope="app")  # the class's thumbnails and counts change
        st.slider("Pen width", 6, 50, 24, key=PEN_WIDTH)
    with camera_tab:
        if st.toggle("Turn on the camera", key="make_camera_on",
                     help="The browser asks for permission first. Each photo you take is "
                     "added to the class at once."):
            key = f"make_camera_{round_}"
            st.camera_input(f"Take a photo of {shown}", key=key, on_change=add_photo,
                            args=(draft, class_name, key))
        else:
            st.caption("Hold the thing (or a drawing on paper) up to the camera, filling the "
                       "frame, on a plain background. Vary the angle and the distance.")
    with upload_tab:
        files = st.file_uploader(
            f"Images of {shown}", type=own_data.IMAGE_TYPES, accept_multiple_files=True,
            key=f"make_upload_{round_}", help="Several at once: PNG, JPEG, WebP, GIF, BMP, TIFF.")
        if files and st.button(f"Add {len(files)} image{'s' * (len(files) > 1)} to {shown}",
                               key="make_add_files", type="primary", icon=":material/add:"):
            problems = []
            for file in files:
                try:
                    draft.add_example(class_name, file.getvalue(), file.name)
                except CnnError as error:  # the others are still added
                    problems.append(common.md(error))  # names the file: escaped
            if problems:
                notice("warning", f"{len(files) - len(problems)} of {len(files)} added. "
                       + " ".join(problems))
            next_round()
            st.rerun(scope="app")


# --- the examples, per class ---------------------------------------------------------------
def gallery(draft: Draft, class_name: str, can_remove: bool) -> None:
    examples = draft.examples(class_name)
    need = max(0, dataset_drafts.own_datasets.MIN_IMAGES_PER_CLASS - len(examples))
    with st.container(border=True):
        head, remove = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{common.md(class_name)}** · {len(examples)} example"
                      f"{'s' * (len(examples) != 1)}"
                      + (f" · :orange[{need} more needed]" if need else ""))
        remove.button(":material/delete:", key=f"make_remove_class_{class_name}",
                      help="Remove this class and its examples", type="tertiary",
                      disabled=not can_remove, on_click=remove_class, args=(draft, class_name))
        if not examples:
            st.caption("No examples yet: choose this class above and add some.")
            return
        shown = examples[::-1][:SHOWN_PER_CLASS]  # newest first
        for start in range(0, len(shown), GRID):
            for column, example in zip(st.columns(GRID), shown[start:start + GRID]):
                column.image(str(example.path), width="stretch")
                column.button(":material/close:", key=f"make_del_{class_name}_{example.name}",
                              help="Delete this example", type="tertiary",
                              on_click=delete_example, args=(draft, class_name, example.name))
        if len(examples) > len(shown):
            st.caption(f"…and {len(examples) - len(shown)} older ones.")


# --- the page ------------------------------------------------------------------------------
st.title("✏️ Make a dataset")
st.caption("Name your classes, add examples, train a network on them. Every example is "
           "saved as you add it.")
data_dir = datasets.writable_data_dir()
common.require(data_dir is not None, "No data folder can be written to, so nothing could be "
               "saved: set CNN_DATA_DIR to a folder you may write in.", common.DATA, "Data")
who = visitor.person()
if who is None:  # a student in a classroom who has not joined: drafts are kept per name
    st.info("Join the class first: your examples are kept under your name, apart from "
            "everyone else's.", icon=":material/badge:")
    classroom_ui.join_box()
    st.stop()
owner = common.owner()
if NOTICE in st.session_state:
    kind, text = st.session_state.pop(NOTICE)
    getattr(st, kind)(text, icon="⚠️")

drafts = dataset_drafts.list_drafts(data_dir, owner)
if st.session_state.get(PICK) not in [*drafts, NEW]:
    st.session_state[PICK] = drafts[0] if drafts else NEW


def choose_draft() -> None:
    st.selectbox("Dataset", [*drafts, NEW], key=PICK,
                 format_func=lambda n: n or "➕ Start a new one")


if st.session_state[PICK] == NEW:
    choose_draft()
    with st.form("make_new_form", border=True):
        st.text_input("Name", key=NEW_NAME, placeholder="my_drawings", max_chars=40,
                      help="Letters, digits, '_' and '-'.")
        st.text_area("Classes, one per line (2 to 10)", key=NEW_CLASSES,
                     placeholder="circle\ntriangle\nstar")
        st.form_submit_button("Create", type="primary", on_click=create_draft,
                              args=(data_dir, owner))
    st.stop()

try:
    draft = Draft.open(data_dir, owner, st.session_state[PICK])
    counts = draft.counts()
except CnnError as error:  # deleted from another browser a moment ago
    common.show_error(error)
    st.stop()
classes = list(counts)

adder_col, gallery_col = st.columns([2, 3], gap="large")
with gallery_col:
    choose_draft()
    draft_bar.build_bar(draft, counts, data_dir,
                       "" if who.role == classroom.LOCAL else who.name)
    for class_name in classes:
        gallery(draft, class_name, can_remove=len(classes) > dataset_drafts.CLASS_COUNT_RANGE[0])
    if len(classes) < dataset_drafts.CLASS_COUNT_RANGE[1]:
        with st.form("make_add_class_form", border=False):
            name_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
            name_col.text_input("Another class", key="make_new_class", placeholder="star")
            button_col.form_submit_button("Add class", on_click=add_class,
                                          args=(draft, "make_new_class"))
    draft_bar.draft_tools(draft, delete_draft)
with adder_col:
    adder(draft, classes)
