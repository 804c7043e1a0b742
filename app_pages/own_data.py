"""Users' own datasets on the Data page: the "your own images" part (add a zip or a folder
of class folders, see what was kept and skipped, list and remove). (The Make a dataset
page's build bar is app_pages/draft_bar.py.) Everything here calls cnn.own_datasets; every
user-given string (file, class, dataset names) goes through
common.md before it reaches Markdown.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import common, visitor
from cnn import datasets, own_datasets
from cnn.errors import CnnError

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff"]
REPORT = "own_report"  # the last import's report (a dict), shown until dismissed
ADD_ROUND = "own_round"  # bumped after an import: fresh, empty uploaders
SIZES = ["auto", 16, 24, 28, 32, 48, 64, 96, 128]
SKIPPED_SHOWN = 50
DATA_SELECT = "data_dataset"  # the Data page's dataset select box
PENDING_SELECT = "own_select"  # a dataset just added, to be chosen in DATA_SELECT


# --- adding: the Data page ------------------------------------------------------------------
def slug(text: str, fallback: str) -> str:
    """`text` as (part of) a dataset name: "Zoë's pets (2)" -> "Zoe_s_pets_2"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_text).strip("_-")
    return name[: own_datasets.NAME_MAX_LENGTH] or fallback


def _suggested_name(upload_name: str) -> str:
    """A dataset name from a file or folder name: "My Pets (2).zip" -> "My_Pets_2"."""
    stem = Path(upload_name.split("/")[0]).stem if upload_name else ""
    return slug(stem, "my_images")


def _folder_as_zip(files) -> bytes:
    """A folder upload (files named by their path inside it, as the browser sends them) as
    one zip in memory, so it is checked and read exactly as an uploaded zip is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for file in files:
            archive.writestr(file.name, file.getvalue())
    return buffer.getvalue()


def _suggest_name(uploader_key: str, name_key: str) -> None:
    """Uploader callback: name the dataset after the zip or folder just chosen."""
    value = st.session_state.get(uploader_key)
    files = value if isinstance(value, list) else [value] if value else []
    if files:
        st.session_state[name_key] = _suggested_name(files[0].name)


def _select(name: str) -> None:
    """Show `name` on the Data page on its next run (and keep it for Train)."""
    st.session_state[common.DATASET] = name
    st.session_state[PENDING_SELECT] = name


def apply_selection() -> None:
    """Call before the Data page draws its select box: choose a dataset just added. (A
    widget's value can only be set before it is drawn in a run.)"""
    if PENDING_SELECT in st.session_state:
        st.session_state[DATA_SELECT] = st.session_state.pop(PENDING_SELECT)


def add_panel() -> None:
    """Upload a zip or a folder of class folders and add it as a dataset."""
    round_ = st.session_state.get(ADD_ROUND, 0)
    name_key = f"own_name_{round_}"
    kind = st.radio("Upload", ["zip", "folder"], horizontal=True, key="own_kind",
                    format_func={"zip": "a zip of class folders",
                                 "folder": "a folder of class folders"}.get)
    if kind == "zip":
        key = f"own_zip_{round_}"
        upload = st.file_uploader("Zip of class folders (cats/…, dogs/…)", type=["zip"],
                                  key=key, on_change=_suggest_name, args=(key, name_key))
        files = [upload] if upload else []
    else:
        key = f"own_folder_{round_}"
        files = st.file_uploader("Folder of class folders (cats/…, dogs/…)",
                                 accept_multiple_files="directory", key=key,
                                 on_change=_suggest_name, args=(key, name_key))
    name_col, size_col, colour_col, split_col = st.columns([3, 2, 2, 2])
    name = name_col.text_input("Dataset name", key=name_key, max_chars=40,
                               help="Letters, digits, '_' and '-'; not a built-in's name.")
    size = size_col.select_slider("Image size (pixels)", SIZES, value="auto", key="own_size",
                                  help="Side of the stored square images. auto: the images' "
                                  f"median, at most {own_datasets.DEFAULT_MAX_SIZE}.")
    colour = colour_col.radio("Colour", ["auto", "grey", "colour"], horizontal=True,
                              key="own_colour", help="auto: grey only if every image is grey.")
    split = split_col.slider("Test split", *own_datasets.TEST_SPLIT_RANGE,
                             own_datasets.DEFAULT_TEST_SPLIT, 0.05, key="own_split",
                             help="Share of each class kept apart to test the network on.")
    if not st.button("Add as a dataset", key="own_add", type="primary", icon=":material/add:",
                     disabled=not files):
        return
    target = datasets.writable_data_dir()
    if target is None:
        common.show_error("None of the data folders can be written to; set CNN_DATA_DIR to a "
                          "folder you may write in.")
        return
    source, label = ((files[0].getvalue(), f"the zip {files[0].name}") if kind == "zip"
                     else (_folder_as_zip(files), "the uploaded folder"))
    bar = st.progress(0.0, text="Reading the images…")

    def progress(done: int, total: int | None) -> None:
        if total:
            bar.progress(done / total, text=f"Reading the images: {done:,} of {total:,}")

    # Inline, in the script thread: 1,000 photos take ~2.5 s on two cores
    # (benchmarks/bench_own_datasets.py), short enough for a progress bar; a background job
    # would only pay off for far bigger uploads, which the browser upload itself slows first.
    try:
        report = own_datasets.add(
            name.strip(), source, target, image_size=None if size == "auto" else size,
            grayscale={"auto": None, "grey": True, "colour": False}[colour],
            test_split=split, progress=progress, source_name=label)
    except CnnError as error:
        bar.empty()
        common.show_error(error)
        return
    common.load_dataset.clear()  # a dataset of this name may have been cached before
    st.session_state[REPORT] = report.to_dict()
    st.session_state[ADD_ROUND] = round_ + 1
    _select(report.name)
    st.rerun()


def show_report(report: dict) -> None:
    """What an import kept and skipped, per class, and every skipped file with the reason."""
    side, _, channels = report["image_shape"]
    kept = sum(report["kept"].values())
    st.success(f"Added **{common.md(report['name'])}**: {kept:,} images in "
               f"{len(report['class_names'])} classes, stored at {side}×{side} "
               f"{'grey' if channels == 1 else 'colour'} ({report['seconds']:.1f} s).",
               icon=":material/check_circle:")
    st.dataframe(pd.DataFrame({
        "class": report["class_names"],
        "kept": [report["kept"][c] for c in report["class_names"]],
        "skipped": [report["skipped_per_class"][c] for c in report["class_names"]],
        "training": [report["train_counts"][c] for c in report["class_names"]],
        "test": [report["test_counts"][c] for c in report["class_names"]],
    }), hide_index=True, key="own_report_table")
    skipped = report["skipped"]
    if skipped:
        with st.expander(f"{len(skipped)} file{'s' * (len(skipped) > 1)} skipped"):
            st.markdown("\n".join(f"- {common.md(s['path'])} {common.md(s['reason'])}"
                                  for s in skipped[:SKIPPED_SHOWN]))
            if len(skipped) > SKIPPED_SHOWN:
                st.caption(f"…and {len(skipped) - SKIPPED_SHOWN} more.")
    st.button("OK", key="own_report_ok", on_click=st.session_state.pop, args=(REPORT, None))


# --- listing and removing -------------------------------------------------------------------
def own_items() -> list[own_datasets.OwnDatasetMeta]:
    """Own datasets in every data folder (the first folder's wins a name), damaged included."""
    found: dict[str, own_datasets.OwnDatasetMeta] = {}
    for folder in datasets.data_dirs():
        for item in own_datasets.list_own(folder):
            found.setdefault(item.name, item)
    return list(found.values())


def remove(item: own_datasets.OwnDatasetMeta) -> None:
    try:
        own_datasets.remove(item.name, item.folder.parent.parent)
    except CnnError as error:
        st.session_state["own_error"] = str(error)
        return
    common.load_dataset.clear()
    if st.session_state.get(common.DATASET) == item.name:
        st.session_state[common.DATASET] = datasets.DEFAULT_DATASET
        st.session_state[DATA_SELECT] = datasets.DEFAULT_DATASET
    if (st.session_state.get(REPORT) or {}).get("name") == item.name:
        st.session_state.pop(REPORT, None)


def own_list(may_remove: bool) -> None:
    items = own_items()
    if not items:
        st.caption("No datasets of your own yet.")
        return
    for item in items:
        text_col, button_col = st.columns([6, 1], vertical_alignment="center")
        if item.damaged:
            text_col.warning(f"**{common.md(item.name)}** is damaged: {common.md(item.damaged)}",
                             icon=":material/broken_image:")
        else:
            side, _, channels = item.image_shape
            text_col.markdown(
                f"**{common.md(item.name)}** · {len(item.class_names)} classes "
                f"({common.md(', '.join(item.class_names[:6]))}"
                f"{', …' if len(item.class_names) > 6 else ''}) · "
                f"{item.train_size:,} training / {item.test_size:,} test images · "
                f"{side}×{side} {'grey' if channels == 1 else 'colour'}")
        if not may_remove:
            continue
        with button_col.popover("Remove", icon=":material/delete:"):
            st.markdown(f"Delete **{common.md(item.name)}** from this computer?")
            st.button("Delete", key=f"own_remove_{item.name}", type="primary",
                      on_click=remove, args=(item,))
    if not may_remove:
        st.caption("Only the teacher can remove datasets: everyone in the class uses them.")


def section() -> None:
    """The Data page's part about the user's own images."""
    with st.expander("Your own images: add a zip or a folder, or make a dataset",
                     icon=":material/add_photo_alternate:",
                     expanded=REPORT in st.session_state):
        if "own_error" in st.session_state:
            common.show_error(st.session_state.pop("own_error"))
        if REPORT in st.session_state:
            show_report(st.session_state[REPORT])
        who = visitor.person()  # in a classroom: None until a student has joined
        st.markdown("Put each class's images in a folder named after the class "
                    "(`cats/…`, `dogs/…`), then upload the folder, or a zip of it. Files that "
                    "are not images are skipped and listed.")
        if who is None:
            st.caption("Join the class on the Train page to add datasets of your own.")
        else:
            add_panel()
        st.page_link(common.MAKE_DATASET, label="Or make one here: draw, photograph or "
                     "upload examples class by class", icon="✏️")
        st.markdown("**Your datasets**")
        own_list(may_remove=who is not None and who.in_charge)
