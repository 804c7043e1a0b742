"""Data: choose a dataset, get it onto the disk, look at it before training."""

import pandas as pd
import streamlit as st

from app_pages import charts, common, own_data
from cnn import datasets, explore, install_jobs
from cnn.errors import CnnError

st.title("🖼️ Data")
st.caption("Step 1 of the workflow: pick the images the network will learn from.")

known = datasets.registry()
names = list(known)
on_disk = {name: datasets.is_available(name) for name in names}
if st.session_state[common.DATASET] not in names:
    st.session_state[common.DATASET] = datasets.DEFAULT_DATASET
own_data.apply_selection()  # a dataset of one's own just added is shown
# The widget has its own key (Streamlit forgets widget keys on other pages); the choice
# is kept in common.DATASET for the Train page.
name = st.selectbox(
    "Dataset", names, index=names.index(st.session_state[common.DATASET]), key="data_dataset",
    format_func=lambda n: known[n].title + ("" if on_disk[n] else " (not downloaded)"),
)
st.session_state[common.DATASET] = name
info = datasets.get_info(name)

left, right = st.columns([3, 2])
with left:
    st.markdown(f"**{common.md(info.title)}** — {common.md(info.description)}")
    st.caption(f"Source: {common.md(info.source)} · Licence: {common.md(info.licence)}")
with right:
    h, w, c = info.image_shape
    st.markdown(
        f"- **{info.train_size:,}** training / **{info.test_size:,}** test images\n"
        f"- **{h}×{w}** pixels, **{'colour (RGB)' if c == 3 else 'grayscale'}**\n"
        f"- **{info.num_classes}** classes"
    )

# Your own images: add a zip or a folder of class folders, see your datasets, remove them.
own_data.section()


def download_panel(name: str, live: bool = False) -> None:
    """Start a background download, or show its progress (polled from disk while `live`)."""
    job = install_jobs.status(name) or {}
    state = job.get("state")
    if state in install_jobs.ACTIVE_STATES:
        done, total = job.get("done") or 0, job.get("total")
        label = f"Downloading {info.title}: {done / 1e6:.1f} MB" + (
            f" of {total / 1e6:.1f} MB" if total else "")
        st.progress(min(done / total, 1.0) if total else 0.0, text=label)
        if st.button("Cancel download", key="cancel_download"):
            install_jobs.cancel(name)
        return
    if live:
        st.rerun()  # finished, failed or cancelled: redraw the page and stop polling
    if state in (install_jobs.FAILED, install_jobs.STOPPED, install_jobs.INTERRUPTED):
        st.warning(common.md(job.get("message", "The download did not finish.")), icon="⚠️")
        others = [known[n].title for n in names if on_disk[n]]
        st.info("Datasets already on this computer: " + common.md(", ".join(others))
                + ". Choose one of them above to go on.")
    if st.button(f"Download {info.title}", key="start_download", type="primary"):
        try:
            install_jobs.start(name)
        except CnnError as error:
            common.show_error(error)
        else:
            st.rerun()  # the page now polls the download's progress


# Poll the disk only while a download runs: an idle poll would keep the server busy.
live_download_panel = st.fragment(run_every=0.5)(download_panel)


if not on_disk[name]:
    st.info(f"{common.md(info.title)} is not on this computer yet. It is downloaded into "
            "the data folder (set CNN_DATA_DIR to choose it). Already here: "
            + common.md(", ".join(known[n].title for n in names if on_disk[n])) + ".",
            icon="📥")
    if (install_jobs.status(name) or {}).get("state") in install_jobs.ACTIVE_STATES:
        live_download_panel(name, live=True)
    else:
        download_panel(name)
    st.stop()

try:
    data = common.load_dataset(name)
except CnnError as error:
    common.show_error(error)
    st.stop()

# Samples: a row of images per class, enlarged without blurring.
st.subheader("Samples per class")
per_class = st.slider("Images per class", 4, 16, 10, key="samples_per_class")
class_ids = list(range(info.num_classes))
if info.num_classes > 20:
    class_ids = st.multiselect("Classes to show", class_ids, default=class_ids[:10],
                               format_func=lambda i: info.class_names[i], key="sample_classes")
picks = explore.samples_per_class(data.y_train, per_class, seed=per_class)
scale = max(1, 64 // info.image_shape[0])
for cls in class_ids:
    label_col, images_col = st.columns([1, 6], vertical_alignment="center")
    label_col.markdown(f"**{common.md(info.class_names[cls])}**")
    images_col.image(explore.mosaic(data.x_train[picks[cls]], scale=scale),
                     clamp=True, channels="RGB" if info.channels == 3 else "L")

# Class balance: are all classes equally represented?
st.subheader("Class balance")
counts = pd.DataFrame({
    "class": list(info.class_names) * 2,
    "set": ["train"] * info.num_classes + ["test"] * info.num_classes,
    "images": explore.class_counts(data.y_train, info.class_names)
    + explore.class_counts(data.y_test, info.class_names),
})
st.altair_chart(charts.class_balance(counts, list(info.class_names)), width="stretch")

# Preprocessing: the only step is scaling pixels from 0…255 to 0…1, inside the model.
st.subheader("Pixels before and after scaling")
st.markdown(
    "Images are stored as whole numbers from 0 to 255 (`uint8`, 4× smaller than floats). "
    "The network's first layer, **Rescaling(1/255)**, turns them into numbers between 0 "
    "and 1 — the tutorial's `x / 255.0` — so a saved model takes raw pixels anywhere."
)
stats = explore.pixel_stats(data.x_train)
st.dataframe(
    pd.DataFrame(stats).T.rename(index={"raw": "stored (0…255)", "scaled": "scaled (0…1)"}),
    column_config={k: st.column_config.NumberColumn(format="%.3f")
                   for k in ("min", "max", "mean", "std")},
    width="stretch",
)
st.page_link(common.TRAIN, label="Next: train a network on these images", icon="🏋️")
