"""Inside the network while it trains: the newest training snapshot (written by
`cnn.explain.SnapshotWriter` into the run folder, `run.inside_path`) as pictures, for the
Train page's live view — the first filters turning from noise into edge detectors.

TensorFlow-free (`cnn.pictures`, not `cnn.explain`): the Train page calls it every second
and never loads TensorFlow into the web server for it. Also home of `show`, the one way the
Inside pages put a picture on screen.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from app_pages import common
from cnn import pictures


def show(target, picture: np.ndarray | bytes, caption: str, stretch: bool = False) -> None:
    """A picture as PNG (Streamlit sends picture bytes as JPEG, blurring their pixels), at
    most as wide as it is (a long caption would stretch it) and never wider than where it
    is put (a wider fixed width spills over the next column); with `stretch`, exactly as
    wide as where it is put. `caption` is Markdown."""
    if stretch:
        target.image(picture, caption=caption, width="stretch", output_format="PNG")
        return
    width = (picture.shape[1] if isinstance(picture, np.ndarray)
             else Image.open(io.BytesIO(picture)).width)
    with target.container(width=width):  # a container narrows to its parent; an image not
        st.image(picture, caption=caption, width="stretch", output_format="PNG")


def _grey_or_rgb(image: np.ndarray, side: int) -> np.ndarray:
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    return pictures.enlarge(rgb, max(1, side // max(image.shape[:2])))


@st.cache_data(max_entries=8, show_spinner=False)
def _snapshot_pictures(path: str, modified_ns: int) -> dict | None:
    """The snapshot's pictures as PNGs, made once per version of the file."""
    snapshot = pictures.read_snapshot(path)
    if snapshot is None:
        return None
    first = snapshot.filters
    factor = max(4, 48 // first.images.shape[1])
    maps = [(m.layer, pictures.feature_map_grid(
        m, columns=4, max_maps=8, factor=max(1, 48 // max(m.maps.shape[1:]))))
        for m in (snapshot.first_maps, snapshot.last_maps)]
    return {
        "epoch": snapshot.epoch,
        "probabilities": snapshot.probabilities,
        "layer": first.layer,
        "image": pictures.png_bytes(_grey_or_rgb(snapshot.image, 128)),
        "before": None if snapshot.initial_filters is None else pictures.png_bytes(
            pictures.filter_grid(snapshot.initial_filters, factor=factor)),
        "now": pictures.png_bytes(pictures.filter_grid(first, factor=factor)),
        "maps": [(layer, pictures.png_bytes(grid)) for layer, grid in maps],
    }


def live_snapshot_panel(snapshot_path: Path, class_names: Sequence[str] | None = None) -> None:
    """The newest snapshot: the first conv layer's filters before training and now, and one
    test image through the first and the last conv block, with the epoch (and, given the
    class names, the network's answer for that image). Cheap enough for a fragment that
    reruns every second: a stat and a cache look-up while the file is unchanged, ~10 ms
    to make the pictures of a new one."""
    try:
        modified = Path(snapshot_path).stat().st_mtime_ns
    except OSError:
        modified = None
    shown = None if modified is None else _snapshot_pictures(str(snapshot_path), modified)
    if shown is None:
        st.caption("The network's first filters appear here as soon as training starts.")
        return
    epoch = shown["epoch"]
    when = "before training" if epoch == 0 else f"after epoch {epoch}"
    answer = ""
    if class_names is not None and len(class_names) == len(shown["probabilities"]):
        best = int(np.argmax(shown["probabilities"]))
        answer = (f" It says **{common.md(class_names[best])}** "
                  f"({shown['probabilities'][best]:.0%}) for this test image.")
    st.markdown(f"**Inside the network {when}.**{answer}")
    # The filters first and big: they are what a class watches change.
    before, now = st.columns(2)
    if shown["before"] is not None and epoch > 0:
        show(before, shown["before"], f"{shown['layer']}'s filters before training: random "
             "noise", stretch=True)
        show(now, shown["now"], f"{shown['layer']}'s filters {when}: each a pattern it "
             "looks for", stretch=True)
    else:
        show(before, shown["now"], f"{shown['layer']}'s filters {when}", stretch=True)
        now.caption("After each epoch they appear here, next to how they began.")
    image, first, last = st.columns([1, 2, 2])
    show(image, shown["image"], "A test image", stretch=True)
    for column, (layer, png), which in zip((first, last), shown["maps"], ("first", "last")):
        show(column, png, f"The image after the {which} block ({layer}), strongest maps",
             stretch=True)
