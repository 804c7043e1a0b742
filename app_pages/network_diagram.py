"""The network drawn as blocks to scale of their shapes (the Inside page), in the charts'
style."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from app_pages.charts import TRAINING_BLUE, VALIDATION_ORANGE, configured, font_sizes

LAYER_GROUPS = ["Input", "Convolution", "Pooling", "Flatten", "Dense", "Answer"]
LAYER_COLOURS = ["#6B6F7B", TRAINING_BLUE, VALIDATION_ORANGE, "#B8B8B8", "#54A24B", "#E45756"]
BLOCK_MAX_WIDTH = 0.5  # of a layer's slot: the block with the most channels


def architecture(blocks: pd.DataFrame, big: bool = False) -> alt.Chart:
    """The network left to right, one block per layer drawn to scale, as CNN Explainer and
    ENNUI draw it: a block's height is the image's side at that layer (relative to the
    input's), its width the number of channels (relative to the most); a list of numbers
    (flatten, dense) is a thin bar. `blocks` has one row per block, in order: label
    (two lines, "name|shape"), group (one of LAYER_GROUPS), height and width in [0, 1],
    and the tooltip's columns Layer, Does, Output, Parameters, Sees.

    Each layer has a slot of the same width, and blocks are sized in slots, so they never
    overlap on a phone; there some labels are left out (the tooltips stay)."""
    fonts = font_sizes(big)
    centre = np.arange(len(blocks)) + 0.5
    half = np.maximum(blocks.width.to_numpy() * BLOCK_MAX_WIDTH, 0.03) / 2
    data = blocks.assign(top=blocks.height * 50, bottom=-blocks.height * 50,
                         left=centre - half, right=centre + half)
    labels = json.dumps([str(label) for label in blocks.label])
    chart = alt.Chart(data).mark_rect(cornerRadius=2, opacity=0.9).encode(
        x=alt.X("left:Q", title=None, scale=alt.Scale(domain=[0, len(blocks)], nice=False),
                axis=alt.Axis(values=list(centre), labelExpr=f"split({labels}"
                              "[floor(datum.value)], '|')", labelAngle=0,
                              labelFontSize=fonts["label"] - 2, labelLimit=120, domain=False,
                              ticks=False, grid=False, labelPadding=8, labelOverlap=True)),
        x2="right:Q",
        y=alt.Y("bottom:Q", scale=alt.Scale(domain=[-52, 52]), axis=None),
        y2="top:Q",
        color=alt.Color("group:N", title=None, scale=alt.Scale(domain=LAYER_GROUPS,
                                                               range=LAYER_COLOURS),
                        legend=alt.Legend(orient="top", labelFontSize=fonts["legend"] - 2,
                                          symbolType="square", columns=3)),
        tooltip=["Layer:N", "Does:N", "Output:N", alt.Tooltip("Parameters:Q", format=","),
                 "Sees:N"],
    )
    # A Streamlit chart's height includes the legend and the labels: ~200 px of blocks.
    return configured(chart.properties(height=320 if big else 290), big)
