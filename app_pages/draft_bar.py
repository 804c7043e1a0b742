"""The "Make a dataset" page's bar under the drawing board: name the draft's dataset, build
it and go to Train; download the draft as a zip; delete it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from app_pages import common
from app_pages.own_data import slug
from cnn import own_datasets
from cnn.dataset_drafts import Draft
from cnn.errors import CnnError
from cnn.store import DamagedFile, read_json_object

WANTED_PRESET = "drawings"  # what a dataset made in the browser is trained with first


def built_from(name: str, data_dir: Path) -> str | None:
    """Where the own dataset `name` in `data_dir` came from (a path), None if none is there."""
    folder = own_datasets.locate(name, data_dir)
    if folder is None:
        return None
    try:
        return str((read_json_object(folder / own_datasets.META_FILE).get("source") or {})
                   .get("path") or "")
    except (OSError, DamagedFile):
        return ""  # damaged: replacing it is what the user needs


def build(draft: Draft, name: str, data_dir: Path) -> own_datasets.ImportReport:
    """The draft as the own dataset `name`: replacing one built from this draft before,
    never one that came from anywhere else."""
    came_from = built_from(name, data_dir)
    if came_from and came_from != str(draft.folder.resolve()):
        raise CnnError(f"There is already a dataset called {name!r} (from {came_from}); choose "
                       "another name.")
    return draft.build(data_dir, name, replace=came_from is not None)


def build_bar(draft: Draft, counts: dict[str, int], data_dir: Path, who: str) -> None:
    """Name the dataset (in a classroom, after `who` made it: datasets are shared by all)
    and build it; then off to Train."""
    need = own_datasets.MIN_IMAGES_PER_CLASS
    short = [c for c, n in counts.items() if n < need]
    key = f"make_dataset_name_{draft.folder.parent.name}/{draft.name}"
    if key not in st.session_state:
        default = f"{slug(who, 'student')}-{draft.name}" if who else draft.name
        st.session_state[key] = default[: own_datasets.NAME_MAX_LENGTH]
    with st.container(border=True):
        name_col, button_col = st.columns([1, 1], vertical_alignment="bottom")
        name = name_col.text_input("Dataset name", key=key, max_chars=40)
        clicked = button_col.button("Build and train", key="make_build", type="primary",
                                    icon=":material/model_training:", disabled=bool(short),
                                    width="stretch")
        total = sum(counts.values())
        st.caption(
            f"{total} examples in {len(counts)} classes. " + (
                f"Every class needs at least {need} (20 or more is better); "
                f"{common.md(', '.join(short))} {'has' if len(short) == 1 else 'have'} fewer."
                if short else "Trains with the drawings preset: random turns, zooms, shifts "
                "and pen widths make a few examples go further."))
    if not clicked:
        return
    try:
        with st.spinner("Building the dataset…"):
            report = build(draft, name.strip(), data_dir)
    except CnnError as error:
        common.show_error(error)
        return
    common.load_dataset.clear()
    st.session_state[common.DATASET] = report.name
    st.session_state[common.WANTED_PRESET] = WANTED_PRESET
    st.switch_page(common.TRAIN)


def draft_tools(draft: Draft, on_delete: Callable[[Draft], None]) -> None:
    left, right = st.columns(2)
    left.download_button(
        "Download as a zip", data=draft.to_zip_bytes, file_name=f"{draft.name}.zip",
        mime="application/zip", icon=":material/download:", key="make_download",
        help="The class folders of PNGs: the Data page and `python -m cnn datasets add` "
        "take the zip back.")
    with right.popover("Delete this draft", icon=":material/delete:"):
        st.markdown(f"Delete **{common.md(draft.name)}** and all its examples?")
        st.button("Delete", key="make_delete", type="primary", on_click=on_delete,
                  args=(draft,))
