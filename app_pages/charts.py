"""Every Altair chart of the app, in one place: same colours, same fonts, legends that never
cover the data. `big=True` is the presenter view: labels readable from the back of a room."""

from __future__ import annotations

import functools
import json

import altair as alt
import numpy as np
import pandas as pd

from cnn import curves

TRAINING_BLUE, VALIDATION_ORANGE = "#4C78A8", "#F58518"
# Training blue, validation orange, on every chart.
SPLIT_COLOURS = alt.Scale(domain=[curves.TRAINING, curves.VALIDATION],
                          range=[TRAINING_BLUE, VALIDATION_ORANGE])
TEXT_LABEL_MAX_CLASSES = 20  # above this, counts on the confusion-matrix cells are unreadable


def font_sizes(big: bool) -> dict[str, int]:
    # Presenter view: ≥ 20 px at 1280×720, as asked of everything on a projector.
    return ({"label": 22, "title": 24, "legend": 22, "mark": 22} if big else
            {"label": 15, "title": 17, "legend": 15, "mark": 14})


def configured(chart, big: bool):
    fonts = font_sizes(big)
    return chart.configure_axis(
        labelFontSize=fonts["label"], titleFontSize=fonts["title"],
        titleFontWeight="normal", grid=True,
    ).configure_legend(labelFontSize=fonts["legend"], titleFontSize=fonts["legend"],
                       symbolSize=160 if not big else 260).configure_view(strokeWidth=0)


def live_metric(data: pd.DataFrame | bytes, metric: str, epochs: float,
                markers: pd.DataFrame | bytes | None = None, big: bool = False,
                height: int = 340) -> dict:
    """A live learning curve as a Vega-Lite spec for st.vega_lite_chart. Thin line:
    training over the latest batches; dots and thick lines: each epoch; hollow dot: the
    untrained network; dashed rules: live learning-rate changes. The x axis spans the whole
    run, so the curves grow from left to right; the legend sits above the plot.

    Thirty browsers watch the same run, each redrawn every second: building the chart with
    Altair costs ~50-100 ms, so the spec is built once per shape (metric, run length, size)
    and only the data is swapped in (named datasets `points` and `markers`), as DataFrames
    or as Arrow bytes made once for every browser (`arrow_bytes`)."""
    with_markers = markers is not None and len(markers) > 0
    spec = json.loads(_live_template(metric, float(epochs), big, height, with_markers))
    spec["datasets"] = {"points": data}
    if with_markers:
        spec["datasets"]["markers"] = markers
    return spec


def arrow_bytes(data: pd.DataFrame) -> bytes:
    """A chart's data as Streamlit sends it to the browser (an Arrow IPC stream), made once
    for all the browsers that show it: st.vega_lite_chart takes such bytes as they are.
    Text columns (split, kind: a few values repeated on every row) go as categories, a
    third of the bytes every browser receives every second."""
    import pyarrow as pa

    text = [column for column in data.columns if not pd.api.types.is_numeric_dtype(data[column])]
    table = pa.Table.from_pandas(data.astype(dict.fromkeys(text, "category")))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@functools.lru_cache(maxsize=64)
def _live_template(metric: str, epochs: float, big: bool, height: int,
                   with_markers: bool) -> str:
    title = "Accuracy" if metric == "accuracy" else "Loss"
    y_scale = alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Scale(zero=True)
    y_axis = alt.Axis(format="%" if metric == "accuracy" else "~g", tickCount=6)
    base = alt.Chart(alt.NamedData("points")).encode(
        x=alt.X("epoch:Q", title="Epoch", scale=alt.Scale(domain=[0, epochs], nice=False),
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title, scale=y_scale, axis=y_axis),
        color=alt.Color("split:N", title=None, scale=SPLIT_COLOURS,
                        legend=alt.Legend(orient="top")),
    )
    kinds = [curves.BATCHES, curves.EPOCHS]
    lines = base.transform_filter(alt.datum.kind != curves.START).mark_line(
        interpolate="monotone").encode(
        detail="kind:N",
        strokeWidth=alt.StrokeWidth("kind:N", scale=alt.Scale(domain=kinds, range=[1.5, 3]),
                                    legend=None),
        opacity=alt.Opacity("kind:N", scale=alt.Scale(domain=kinds, range=[0.45, 1]),
                            legend=None),
    )
    # The untrained network: a hollow dot at 0, there from the first second of a run.
    start = base.transform_filter(alt.datum.kind == curves.START).mark_point(
        filled=False, size=120, strokeWidth=2, opacity=1
    ).encode(tooltip=[alt.Tooltip("value:Q", title=f"{title} before training",
                                  format=".1%" if metric == "accuracy" else ".4f")])
    points = base.transform_filter(alt.datum.kind == curves.EPOCHS).mark_point(
        filled=True, size=100 if epochs <= 20 else 50, opacity=1
    ).encode(tooltip=[
        alt.Tooltip("split:N", title="Images"),
        alt.Tooltip("epoch:Q", title="Epoch", format=".2~f"),
        alt.Tooltip("value:Q", title=title, format=".1%" if metric == "accuracy" else ".4f"),
    ])
    layers = [lines, start, points]
    if with_markers:
        layers.append(alt.Chart(alt.NamedData("markers")).mark_rule(
            strokeDash=[6, 4], color="#6B6F7B").encode(
            x="epoch:Q", tooltip=[alt.Tooltip("text:N", title="Change")]))
    chart = configured(alt.layer(*layers).properties(height=height), big)
    return json.dumps(chart.to_dict())


def epoch_curve(data: pd.DataFrame, metric: str, big: bool = False) -> alt.Chart:
    """Training vs validation per epoch (finished runs), legend above the plot."""
    percent = metric == "Accuracy"
    y_scale = alt.Scale(domain=[0, 1]) if percent else alt.Scale(zero=True)
    chart = alt.Chart(data[data.metric == metric], title=metric).mark_line(
        point=alt.OverlayMarkDef(size=70), strokeWidth=3).encode(
        x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1, format="~g")),
        y=alt.Y("value:Q", title=metric, scale=y_scale,
                axis=alt.Axis(format=".0%" if percent else ".2f")),
        color=alt.Color("split:N", title=None, scale=SPLIT_COLOURS,
                        legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("epoch:Q", title="Epoch"), alt.Tooltip("split:N", title="Data"),
                 alt.Tooltip("value:Q", title=metric, format=".1%" if percent else ".3f")],
    ).properties(height=340)
    return configured(chart, big)


def compare_runs(data: pd.DataFrame, big: bool = False) -> alt.Chart:
    """Validation accuracy of several runs, one line each; the legend below the plot."""
    chart = alt.Chart(data, title="Validation accuracy").mark_line(
        point=True, strokeWidth=3).encode(
        x=alt.X("epoch:Q", title="Epoch", axis=alt.Axis(tickMinStep=1, format="~g")),
        y=alt.Y("value:Q", title="Validation accuracy", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".0%")),
        color=alt.Color("run:N", title=None, scale=alt.Scale(scheme="tableau10"),
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=600)),
        tooltip=["run:N", "epoch:Q", alt.Tooltip("value:Q", format=".1%")],
    ).properties(height=380)
    return configured(chart, big)


def accuracy_against(data: pd.DataFrame, setting: str, log_scale: bool,
                     big: bool = False) -> alt.Chart:
    """Test accuracy of each run against one setting: what that knob did, class-wide."""
    chart = alt.Chart(data).mark_circle(size=160, opacity=0.85).encode(
        x=alt.X("value:Q", title=setting,
                scale=alt.Scale(type="log") if log_scale else alt.Scale(zero=False)),
        y=alt.Y("test_accuracy:Q", title="Test accuracy", axis=alt.Axis(format=".0%"),
                scale=alt.Scale(zero=False)),
        color=alt.Color("owner:N", title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["name:N", "owner:N", alt.Tooltip("value:Q", title=setting),
                 alt.Tooltip("test_accuracy:Q", title="Test accuracy", format=".1%")],
    ).properties(height=320)
    return configured(chart, big)


def confusion(matrix: np.ndarray, class_names: list[str], big: bool = False) -> alt.LayerChart:
    """Heatmap, rows = true class, columns = predicted; coloured by the share of each true
    class (so rare and common classes compare), with the counts written on the cells.
    Column labels are slanted so long class names ("Ankle boot") never overlap."""
    n = len(class_names)
    support = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, support, out=np.zeros(matrix.shape), where=support > 0)
    true_idx, pred_idx = np.indices(matrix.shape)
    data = pd.DataFrame({
        "true": np.asarray(class_names)[true_idx.ravel()],
        "predicted": np.asarray(class_names)[pred_idx.ravel()],
        "count": matrix.ravel(), "share": share.ravel(),
    })
    fonts = font_sizes(big)
    many = n > TEXT_LABEL_MAX_CLASSES
    cell = 9 if many else (56 if big else 48) if n <= 10 else 28
    axis = {"labelFontSize": 7 if many else fonts["label"] - 2, "labelLimit": 130,
            "labelOverlap": False, "titleFontSize": fonts["title"] - 3}
    base = alt.Chart(data).encode(
        x=alt.X("predicted:N", sort=class_names, title="Predicted class",
                axis=alt.Axis(orient="top", labelAngle=-40, labelAlign="left", **axis)),
        y=alt.Y("true:N", sort=class_names, title="True class", axis=alt.Axis(**axis)),
    )
    cells = base.mark_rect(stroke="white", strokeWidth=0.5 if many else 1).encode(
        color=alt.Color("share:Q", title="Share of the true class",
                        scale=alt.Scale(domain=[0, 1], range=["#F7FBFF", "#08519C"]),
                        legend=alt.Legend(format=".0%", orient="bottom", gradientLength=240)),
        tooltip=[alt.Tooltip("true:N", title="True"),
                 alt.Tooltip("predicted:N", title="Predicted"),
                 alt.Tooltip("count:Q", title="Images"),
                 alt.Tooltip("share:Q", title="Share of the true class", format=".1%")],
    )
    layers = [cells]
    if not many:
        # Zeros stay blank: the few non-zero cells off the diagonal are what matters.
        layers.append(base.transform_filter("datum.count > 0").mark_text(
            fontSize=(fonts["mark"] + 2) if n <= 10 else 11).encode(
            text=alt.Text("count:Q"),
            color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("#262730")),
        ))
    return alt.layer(*layers).properties(width=cell * n, height=cell * n)


def class_balance(counts: pd.DataFrame, class_names: list[str]) -> alt.Chart:
    """Images per class in the training and test sets, side by side."""
    return alt.Chart(counts).mark_bar().encode(
        x=alt.X("class:N", sort=list(class_names), title=None,
                axis=alt.Axis(labelAngle=-40, labelAlign="right", labelLimit=130)),
        y=alt.Y("images:Q", title="Images"),
        color=alt.Color("set:N", title="Set", scale=alt.Scale(range=["#E4572E", "#29335C"]),
                        legend=alt.Legend(orient="top")),
        xOffset="set:N",
        tooltip=["class", "set", "images"],
    ).properties(height=280)


def top_k(labels: list[str], probabilities: list[float], big: bool = False) -> dict:
    """The network's top guesses as a Vega-Lite spec, best on top, in exactly the order
    given (every layer sorts by the same explicit list, so a redraw never reorders the
    bars). Built with Altair once per number of bars; each answer only swaps in its data
    and order (Altair takes 50-100 ms a chart, which a drawing's every stroke would pay)."""
    spec = json.loads(_top_k_template(len(labels), big))
    spec["datasets"] = {"guesses": pd.DataFrame({
        "class": list(labels), "probability": [float(p) for p in probabilities],
        "best": [True] + [False] * (len(labels) - 1)})}
    for layer in spec["layer"]:
        layer["encoding"]["y"]["sort"] = list(labels)
    return spec


@functools.lru_cache(maxsize=32)
def _top_k_template(count: int, big: bool) -> str:
    fonts = font_sizes(big)
    base = alt.Chart(alt.NamedData("guesses")).encode(
        y=alt.Y("class:N", sort=[], title=None,
                axis=alt.Axis(labelFontSize=fonts["label"], labelLimit=160)),
        x=alt.X("probability:Q", title="Probability", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".0%", tickCount=5)),
        tooltip=["class:N", alt.Tooltip("probability:Q", format=".1%")],
    )
    bars = base.mark_bar(cornerRadiusEnd=4, height={"band": 0.75}).encode(
        color=alt.condition("datum.best", alt.value(VALIDATION_ORANGE),
                            alt.value(TRAINING_BLUE)))
    text = base.mark_text(align="left", dx=5, fontSize=fonts["mark"]).encode(
        text=alt.Text("probability:Q", format=".1%"))
    chart = alt.layer(bars, text).properties(height=(46 if big else 38) * count + 40)
    return json.dumps(chart.to_dict())
