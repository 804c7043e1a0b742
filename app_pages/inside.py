"""Inside the network: what a trained CNN does with one image — where it looked to give
its answer, its layers, the image flowing through them, and the filters it learned.

Opened from the sidebar, from Classify ("why this answer?") and from Evaluate's mistakes
("why did it say …?"). The URL names the run and a test image (?run=…&test=…&class=…), so
a view can be shared as a link and survives a refresh.
"""

import numpy as np
import streamlit as st

from app_pages import charts, common
from app_pages import inside_parts as parts
from app_pages import inside_pictures as pictures
from cnn import datasets, explain, runs
from cnn.errors import CnnError

st.title("🔬 Inside the network")
# Runs still training have a model too (saved after each epoch).
with_model = [run for run in runs.list_runs() if run.has_model()]
common.require(
    bool(with_model),
    "No trained network yet. Train one first; then come back here to look inside it.",
    common.TRAIN, "Go to Train")
link_problem = parts.apply_link(with_model)
if link_problem:
    st.warning(link_problem, icon=":material/link_off:")

finished = common.finished_runs()
run = common.select_run(with_model, parts.RUN, "Trained network",
                        default=finished[0] if finished else None)
try:
    info = datasets.get_info(run.config.dataset)
    inside = parts.inside(run)
except CnnError as error:
    common.show_error(error)
    st.stop()
explainer = inside.explainer
class_names = list(info.class_names)
if explainer.num_classes != len(class_names) or explainer.image_shape != info.image_shape:
    common.show_error(f"The model of run {run.id} does not fit its dataset "
                      f"{info.title} any more, so it cannot be looked into.")
    st.stop()

# --- where it looked -------------------------------------------------------------------------
@st.fragment
def where_it_looked(picked: parts.Picked) -> None:
    """The answer and its maps. Reruns alone when another class is picked: the layers,
    maps and filters below do not depend on it."""
    wanted = st.session_state.get(parts.CLASS)
    if wanted is not None and wanted not in range(len(class_names)):
        st.session_state[parts.CLASS] = wanted = None
    methods = parts.methods(explainer)
    expl = explainer.explain(picked.array, wanted, methods)
    best, explained = expl.predicted, class_names[expl.class_index]
    verdict = ""
    if picked.true_label is not None:
        verdict = (" :green[:material/check_circle: right]" if class_names[best] ==
                   picked.true_label else
                   f" :red[:material/cancel: wrong, it is {common.md(picked.true_label)}]")
    st.markdown(f"#### {picked.title}: the network says :orange[**{common.md(class_names[best])}"
                f"**] ({expl.probabilities[best]:.0%} sure){verdict}")
    image_col, heat_col, answer_col = st.columns([1, 1, 1.3])
    parts.show(image_col, pictures.enlarged(expl.image), f"What the network sees: "
               f"{info.image_shape[1]}×{info.image_shape[0]} pixels")
    parts.show(heat_col, pictures.heatmap_picture(expl, explain.DEFAULT_METHOD),
               f"Where it looked for “{common.md(explained)}”: bright = mattered most")
    with answer_col:
        st.selectbox(
            "Where did it look for…", [None, *range(len(class_names))], key=parts.CLASS,
            format_func=lambda i: pictures.class_label(class_names, expl.probabilities, i),
            help="Pick another class to ask “why not that?”: the maps show what, in this "
            "image, speaks for that class.")
        top = np.argsort(-expl.probabilities, kind="stable")[:5]
        st.vega_lite_chart(spec=charts.top_k([class_names[i] for i in top],
                                             expl.probabilities[top]), width="stretch")
    st.caption(f"**How this map is made:** {expl.heatmap.caption} "
               f"{common.md(pictures.strength_sentence(expl.heatmap, explained))}")

    st.markdown("**Other ways to ask where it looked** — quicker estimates; compare them "
                "with the map above.")
    for column, method in zip(st.columns(3), methods[1:]):
        heatmap = expl.heatmaps[method]
        parts.show(column, pictures.heatmap_picture(expl, method),
                   f"{heatmap.title}: {heatmap.caption}")
    parts.write_link(run, picked.test_index, None if wanted is None else class_names[wanted])


picked = parts.choose_image(run, info)
if picked is None:
    st.info("Pick, upload or draw an image above to see what the network does with it.",
            icon=":material/image:")
    parts.write_link(run, None, None)
else:
    where_it_looked(picked)

# --- the layers ------------------------------------------------------------------------------
st.subheader("The layers, left to right")
st.vega_lite_chart(inside.architecture, width="stretch")
st.caption("Each block is one layer's output, drawn to scale: its height is the size of the "
           "image at that layer, its width the number of feature maps. Pooling halves the "
           "image; flatten turns the maps into one list of numbers (bars: longer = more "
           "numbers). Point at a block to see what it does and how much of the image it sees.")
with st.expander("Every layer as a table"):
    st.dataframe(pictures.layer_frame(explainer.layers), hide_index=True, width="stretch")

# --- the image flowing through them ----------------------------------------------------------
if picked is not None:
    st.subheader("The image flowing through the layers")
    all_maps = st.toggle("Show every map", key=parts.ALL_MAPS,
                         help="Off: the 8 strongest maps of each layer. On: all of them.")
    st.caption("Each small square is one feature map: where in the image one filter found "
               "its pattern (white = strongly, black = not at all), strongest first. Early "
               "layers find edges and colours; later ones, smaller and more, find parts.")
    # 180 px a layer: four a row beside the sidebar of a 1280-pixel-wide projector.
    with st.container(horizontal=True, key="inside_flow"):
        with st.container(width=180):
            st.markdown("**input**")
            parts.show(st, pictures.enlarged(picked.array, 168), "the pixels, scaled to 0–1")
        for maps in pictures.flowing_layers(explainer.feature_maps(picked.array),
                                         explainer.activation_layers):
            grid, caption = pictures.feature_map_picture(maps, all_maps)
            with st.container(width=max(180, grid.shape[1])):
                st.markdown(f"**{maps.layer}**")
                parts.show(st, grid, caption)
        with st.container(width=180):
            st.markdown("**answer**")
            probabilities = explainer.probabilities(picked.array[np.newaxis])[0]
            best = int(np.argmax(probabilities))
            st.markdown(f"Dense layers weigh all the maps into one score per class: "
                        f":orange[**{common.md(class_names[best])}**] "
                        f"({probabilities[best]:.0%}).")

# --- the filters -----------------------------------------------------------------------------
st.subheader("What each filter looks for")
st.caption("A filter is a small grid of weights the network learned. It slides over the image "
           "(or the maps before it) and lights up where the pattern matches: the first "
           "layer's look like edges, stripes and colour blobs. Weights are on one scale per "
           "layer, so a faint filter is a weak one.")
(first_layer, first_png, first_caption), *deeper = inside.filter_pictures
st.markdown(f"**{first_layer}**, the first layer")
parts.show(st, first_png, first_caption)
if deeper:
    with st.expander(f"The deeper layers' filters ({', '.join(d[0] for d in deeper)})"):
        st.caption("A deeper filter reads every map of the layer before it, so it is hard "
                   "to see as one picture: its feature maps above say more about what it "
                   "finds.")
        with st.container(horizontal=True, gap="large", key="inside_filters"):
            for layer, png, caption in deeper:
                with st.container(width=300):
                    st.markdown(f"**{layer}**")
                    parts.show(st, png, caption)
