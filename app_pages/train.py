"""Train: set the hyperparameters, see the network they make, start a run, watch it learn.

The form's widgets build one `HyperParams`; `validate` decides whether Start is allowed.
Training runs in its own process (`runs.create_run`); this page only reads the run's files,
so a refresh, another page or another browser shows the same live run.
"""

from __future__ import annotations


import altair as alt
import pandas as pd
import streamlit as st

from app_pages import common
from cnn import config, curves, datasets, models, runs
from cnn.config import ConvBlock, HyperParams
from cnn.errors import CnnError, ConfigError

# --- widget keys -----------------------------------------------------------------------
PRESET = "train_preset"
DATASET = "train_dataset"
N_BLOCKS = "train_n_blocks"  # how many conv-block rows the editor shows (not a widget)
FORM = "train_form"  # a copy of the form's values: Streamlit forgets widget state on other pages
RUN = "train_run"
START = "train_start"
STOP = "train_stop"
TAB = "train_tab"
SETTINGS_TAB = ":material/tune: Settings"
TRAINING_TAB = ":material/monitoring: Training"

FIELDS = {  # HyperParams field -> widget key, for the scalar settings
    "padding": "train_padding",
    "batch_norm": "train_batch_norm",
    "dropout": "train_dropout",
    "optimizer": "train_optimizer",
    "learning_rate": "train_learning_rate",
    "weight_decay": "train_weight_decay",
    "lr_schedule": "train_schedule",
    "warmup_epochs": "train_warmup",
    "label_smoothing": "train_label_smoothing",
    "batch_size": "train_batch_size",
    "epochs": "train_epochs",
    "augment_flip": "train_flip",
    "augment_shift": "train_shift",
    "validation_split": "train_validation_split",
    "seed": "train_seed",
    "precision": "train_precision",
}
DENSE = "train_dense"
USE_SUBSET = "train_use_subset"
SUBSET = "train_subset"

LABELS = {  # how the "changed from the preset" line names fields
    "conv_blocks": "conv blocks", "padding": "padding", "batch_norm": "batch norm",
    "dropout": "dropout", "dense_units": "dense layers", "optimizer": "optimizer",
    "learning_rate": "learning rate", "weight_decay": "weight decay",
    "lr_schedule": "schedule", "warmup_epochs": "warm-up", "label_smoothing": "label smoothing",
    "batch_size": "batch size", "epochs": "epochs", "augment_flip": "flips",
    "augment_shift": "shifts", "validation_split": "validation split",
    "train_size": "training images", "seed": "seed", "precision": "precision",
}

FILTER_CHOICES = [4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512]
KERNEL_CHOICES = [1, 3, 5, 7]
LR_CHOICES = [1e-5, 3e-5, 1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
BATCH_CHOICES = [8, 16, 32, 64, 128, 256, 512]

STATE_BADGES = {
    runs.QUEUED: ("Queued", "⏳", "gray"),
    runs.RUNNING: ("Training", "🏃", "blue"),
    runs.STOPPING: ("Stopping", "✋", "orange"),
    runs.FINISHED: ("Finished", "✅", "green"),
    runs.STOPPED: ("Stopped", "⏹️", "violet"),
    runs.FAILED: ("Failed", "❌", "red"),
    runs.INTERRUPTED: ("Interrupted", "⚠️", "red"),
}


def _block_key(i: int, part: str) -> str:
    return f"train_block{i}_{part}"


def _form_keys() -> list[str]:
    keys = [*FIELDS.values(), DENSE, USE_SUBSET, SUBSET, PRESET]
    for i in range(st.session_state.get(N_BLOCKS, 0)):
        keys += [_block_key(i, "filters"), _block_key(i, "kernel"), _block_key(i, "pool")]
    return keys


# --- form state <-> HyperParams ----------------------------------------------------------
def _write_blocks(blocks: list[ConvBlock]) -> None:
    st.session_state[N_BLOCKS] = len(blocks)
    for i, block in enumerate(blocks):
        st.session_state[_block_key(i, "filters")] = block.filters
        st.session_state[_block_key(i, "kernel")] = block.kernel_size
        st.session_state[_block_key(i, "pool")] = block.pool


def _read_blocks() -> list[ConvBlock]:
    s = st.session_state
    return [ConvBlock(s[_block_key(i, "filters")], s[_block_key(i, "kernel")],
                      s[_block_key(i, "pool")]) for i in range(s[N_BLOCKS])]


def _write_params(params: HyperParams) -> None:
    """Fill every widget of the form from `params` (the dataset select is left alone)."""
    for field, key in FIELDS.items():
        st.session_state[key] = getattr(params, field)
    st.session_state[DENSE] = ", ".join(str(units) for units in params.dense_units)
    st.session_state[USE_SUBSET] = params.train_size is not None
    st.session_state[SUBSET] = params.train_size or 1000
    _write_blocks(params.conv_blocks)


def _read_params(dataset: str) -> HyperParams:
    """The HyperParams the widgets describe (not validated yet)."""
    s = st.session_state
    return HyperParams(
        dataset=dataset,
        conv_blocks=_read_blocks(),
        dense_units=_parse_units(s[DENSE]),
        train_size=int(s[SUBSET]) if s[USE_SUBSET] else None,
        **{field: s[key] for field, key in FIELDS.items()},
    )


def _parse_units(text: str) -> list[int]:
    parts = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise ConfigError(
            f"Dense layers: write whole numbers separated by commas, like “128, 64” "
            f"(got “{text}”). Leave it empty for no hidden dense layer."
        ) from None


def _apply_preset() -> None:
    _write_params(config.preset(st.session_state[PRESET]))


def _add_block() -> None:
    blocks = _read_blocks()
    last = blocks[-1] if blocks else ConvBlock()
    _write_blocks([*blocks, ConvBlock(last.filters, last.kernel_size, last.pool)])


def _remove_block(index: int) -> None:
    blocks = _read_blocks()
    _write_blocks(blocks[:index] + blocks[index + 1:])


def _follow_dataset() -> None:
    st.session_state[common.DATASET] = st.session_state[DATASET]


def _choices(options: list, value) -> list:
    """`options` plus `value` if it is missing (a preset or an old form may hold any value)."""
    return options if value in options else sorted([*options, value])


@st.cache_data(show_spinner="Building the network…", max_entries=64)
def _describe(params_json: str, dataset: str) -> tuple[list[dict], int]:
    """The model summary for these settings, built but never trained."""
    params = HyperParams.from_json(params_json)
    info = datasets.get_info(dataset)
    # Shapes and counts do not depend on precision; float32 skips the bfloat16 probe.
    rows, total = models.describe(params.replace(precision="float32"), info.image_shape,
                                  info.num_classes)
    table = [{"Layer": row.name, "Type": row.kind,
              "Output shape": "×".join(str(d) for d in row.output_shape),
              "Parameters": row.parameters} for row in rows]
    return table, total


# --- live run: data for the charts -------------------------------------------------------
@st.cache_resource(max_entries=32)
def _metrics_reader(path: str) -> tuple[runs.JsonLinesReader, object]:
    import threading

    return runs.JsonLinesReader(path), threading.Lock()


def _records(run: runs.Run) -> list[dict]:
    """The run's metrics records, reading only the bytes added since the last look."""
    reader, lock = _metrics_reader(str(run.metrics_path))
    with lock:
        return list(reader.read())




def metric_chart(data: pd.DataFrame, metric: str, epochs: int) -> alt.LayerChart:
    """Thin line: training over the latest batches; dots and thick lines: each epoch."""
    title = "Accuracy" if metric == "accuracy" else "Loss"
    y_scale = alt.Scale(domain=[0, 1]) if metric == "accuracy" else alt.Scale(zero=True)
    y_axis = alt.Axis(format="%" if metric == "accuracy" else "~g", tickCount=6)
    base = alt.Chart(data).encode(
        # A fixed x range: the curves grow from left to right across the whole run.
        x=alt.X("epoch:Q", title="Epoch", scale=alt.Scale(domain=[0, epochs], nice=False),
                axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title, scale=y_scale, axis=y_axis),
        color=alt.Color("split:N", title=None, scale=common.SPLIT_COLOURS,
                        legend=alt.Legend(orient="top", labelFontSize=15, symbolSize=160)),
    )
    kinds = [curves.BATCHES, curves.EPOCHS]
    lines = base.mark_line(interpolate="monotone").encode(
        detail="kind:N",
        strokeWidth=alt.StrokeWidth("kind:N", scale=alt.Scale(domain=kinds, range=[1.5, 3]),
                                    legend=None),
        opacity=alt.Opacity("kind:N", scale=alt.Scale(domain=kinds, range=[0.45, 1]),
                            legend=None),
    )
    points = base.transform_filter(alt.datum.kind == curves.EPOCHS).mark_point(
        filled=True, size=100 if epochs <= 20 else 50, opacity=1
    ).encode(tooltip=[
        alt.Tooltip("split:N", title="Images"),
        alt.Tooltip("epoch:Q", title="Epoch", format=".2~f"),
        alt.Tooltip("value:Q", title=title, format=".1%" if metric == "accuracy" else ".4f"),
    ])
    return (lines + points).properties(height=340).configure_axis(
        labelFontSize=15, titleFontSize=17, titleFontWeight="normal", grid=True,
    ).configure_view(strokeWidth=0)


# --- live run: progress ------------------------------------------------------------------
def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _settings_line(params: HyperParams) -> str:
    blocks = " → ".join(f"{b.filters}" + ("+pool" if b.pool else "") for b in params.conv_blocks)
    dense = ", ".join(map(str, params.dense_units)) or "none"
    return (f"Conv {blocks} · dense {dense} · {params.optimizer} at learning rate "
            f"{params.learning_rate:g} · batch {params.batch_size} · {params.epochs} epoch(s)"
            + (f" · {params.train_size:,} training images" if params.train_size else ""))


def _badge(state: str) -> None:
    label, icon, colour = STATE_BADGES.get(state, (state, "❔", "gray"))
    st.badge(label, icon=icon, color=colour)


def _stop(run: runs.Run) -> None:
    try:
        run.request_stop()
    except CnnError as error:
        st.session_state["train_action_error"] = str(error)


def _set_learning_rate(run: runs.Run, learning_rate: float) -> None:
    try:
        run.set_learning_rate(learning_rate)
    except CnnError as error:
        st.session_state["train_action_error"] = str(error)


def run_view(run: runs.Run, status: dict) -> None:
    """Everything about one run, from its files: state, progress, charts, results."""
    try:
        params = run.config
    except CnnError as error:
        common.show_error(error)
        return
    state = status.get("state")
    records = _records(run)
    message = status.get("message") or ""

    position = run.queue_position() if state == runs.QUEUED else None
    # Queued with no run ahead and a free slot: it is only starting up (loading TensorFlow).
    starting = position == 1 and sum(
        r.state() in (runs.RUNNING, runs.STOPPING) for r in runs.active_runs()
    ) < runs.parallel_slots()
    with st.container(horizontal=True, vertical_alignment="center"):
        if starting:
            st.badge("Starting", icon="🚀", color="blue")
            st.markdown("**Starting the training process…**")
        else:
            _badge(state)
            if state in runs.ACTIVE_STATES:
                st.markdown(f"**{message}**")
        st.caption(_settings_line(params))

    if position is not None and not starting:
        st.info(f"Queued — {_ordinal(position)} in line. It starts by itself when the run "
                "before it ends.", icon="⏳")
    if state in runs.ACTIVE_STATES:
        stopping = state == runs.STOPPING or bool(run.control().get("stop"))
        progress = curves.progress(records, params.epochs)
        if state != runs.QUEUED:
            st.progress(*(progress or (0.0, message)))
        if stopping:
            st.warning("Stopping… the network keeps what it has learnt so far and is then "
                       "tested.", icon="✋")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.button("Stop training" if state != runs.QUEUED else "Cancel", key=STOP,
                      icon=":material/stop_circle:", disabled=stopping, on_click=_stop,
                      args=(run,), help="Ends training after the current batch; the network "
                      "learnt so far is kept and tested.")
            # Changing the learning rate makes sense only while batches are still to come.
            if state == runs.RUNNING and not stopping and progress and progress[0] < 1:
                peak = run.control().get("learning_rate", params.learning_rate)
                now = next((r["learning_rate"] for r in reversed(records)
                            if r.get("learning_rate") is not None), None)
                st.button("Learning rate ÷ 2", key="train_lr_down", on_click=_set_learning_rate,
                          args=(run, peak / 2), help="From the next batch on.")
                st.button("Learning rate × 2", key="train_lr_up", on_click=_set_learning_rate,
                          args=(run, min(peak * 2, 10.0)), disabled=peak * 2 > 10,
                          help="From the next batch on.")
                if now is not None:
                    st.caption(f"Learning rate now: {now:.2g}")
        error = st.session_state.pop("train_action_error", None)
        if error:
            st.error(error, icon="⚠️")

    if state in (runs.FINISHED, runs.STOPPED) and status.get("test_accuracy") is not None:
        st.success(message, icon="🎉" if state == runs.FINISHED else "⏹️")
        cols = st.columns(4)
        cols[0].metric("Test accuracy", f"{status['test_accuracy']:.1%}", border=True,
                       help="Share of the test images, never seen in training, that it "
                       "classifies correctly.")
        cols[1].metric("Test loss", f"{status['test_loss']:.3f}", border=True,
                       help="Cross-entropy on the test images: lower is better.")
        cols[2].metric("Epochs trained", status.get("epochs_completed", 0), border=True)
        cols[3].metric("Training time", curves.duration(status.get("train_seconds") or 0),
                       border=True, help="Including loading the data and testing.")
        facts = []
        if status.get("train_images"):
            facts.append(f"{status['train_images']:,} training images")
        if status.get("train_images_per_second"):
            facts.append(f"{status['train_images_per_second']:,.0f} images/s")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.page_link(common.EVALUATE, label="Next: see where it goes wrong on Evaluate",
                         icon="📊")
            if facts:
                st.caption(" · ".join(facts))
    elif state == runs.FAILED:
        st.error(message or "The run failed.", icon="❌")
        st.caption(f"The training process's own log: {run.log_path}")
    elif state == runs.INTERRUPTED:
        st.warning(message or "The run was interrupted.", icon="⚠️")
    elif state in (runs.FINISHED, runs.STOPPED):
        st.info(message)

    if not records:
        return
    for col, metric in zip(st.columns(2, gap="large"), ("loss", "accuracy")):
        col.altair_chart(metric_chart(curves.training_curves(records, metric, params.batch_size),
                                      metric, params.epochs), width="stretch")
    st.caption("Thin line: training, over the latest batches (smoothed). Dots: averages over "
               "each epoch — validation uses images held back from training"
               + (", and its first dot comes when the first epoch ends." if not any(
                   r.get("kind") == "epoch" for r in records) else "."))


@st.fragment(run_every=1.0)
def live_run_view(run_id: str, shown_state: str) -> None:
    """The run, re-read from disk every second while it is queued or training."""
    try:
        run = runs.get_run(run_id)
        status = run.status()
    except CnnError as error:
        common.show_error(error)
        return
    if status.get("state") != shown_state:
        # A new state (started, stopping, ended): redraw the whole page once, so the run
        # list says it too; an ended run is then drawn without polling.
        st.rerun(scope="app")
    run_view(run, status)


@st.fragment(run_every=2.0)
def wait_for_a_run() -> None:
    """No run yet: look again every two seconds (another browser may start one)."""
    if runs.list_runs():
        st.rerun(scope="app")
    st.info("Nothing has been trained yet. Choose the settings, then press "
            "**Start training**.", icon="👆")


def _pick_run() -> None:
    st.session_state[common.SELECTED_RUN] = st.session_state[RUN]


# --- the page ----------------------------------------------------------------------------
st.title("🏋️ Train")
st.caption("Steps 3 to 5 of the workflow: build the network, compile it, train it.")

names = [name for name in datasets.DATASETS if datasets.is_available(name)]
common.require(bool(names), "No dataset is on this computer yet.", common.DATA,
               "Get one on the Data page", icon="🖼️")

# Restore the form after a visit to another page; the very first time, the default preset.
if FORM in st.session_state:
    for key, value in st.session_state[FORM].items():
        st.session_state.setdefault(key, value)
else:
    st.session_state[PRESET] = config.DEFAULT_PRESET
    _write_params(config.preset(config.DEFAULT_PRESET))
wanted = st.session_state[common.DATASET]
st.session_state[DATASET] = wanted if wanted in names else names[0]
info = datasets.get_info(st.session_state[DATASET])

# One HyperParams from the form (session state already holds every widget's new value),
# checked in the one place that checks them.
problem: CnnError | None = None
requested: HyperParams | None = None  # as the form says
params: HyperParams | None = None  # what will be trained
note = None
table, total = [], 0
try:
    params = requested = _read_params(info.name)
    # The training set after the validation split: a bigger subset means "all of it".
    available = info.train_size - round(params.validation_split * info.train_size)
    if params.train_size is not None and params.train_size >= available:
        note = (f"{info.title} has {available:,} training images after the validation "
                "split: all of them are used.")
        params = params.replace(train_size=None)
    params.validate(info.image_shape)
    table, total = _describe(params.to_json(), info.name)
except CnnError as error:
    problem = error

# The Start bar stays above the tabs, so it is always in view.
active = runs.active_runs()
start_col, about_col = st.columns([1, 2], vertical_alignment="center")
clicked = start_col.button("Start training", key=START, type="primary", width="stretch",
                           icon=":material/play_arrow:", disabled=problem is not None)
if problem is not None:
    about_col.markdown(":red[**Fix the settings first**] — see the message in Settings.")
else:
    epochs = f"{params.epochs} epoch{'s' if params.epochs > 1 else ''}"
    about_col.markdown(f"**{info.title}** · {total:,} parameters · {epochs}"
                       + (" · a new run starts when the one training now ends."
                          if active else ""))
if clicked and params is not None:
    try:
        new_run = runs.create_run(params)
    except CnnError as error:
        common.show_error(error)
    else:
        st.session_state[common.SELECTED_RUN] = new_run.id
        st.session_state[TAB] = TRAINING_TAB  # show it learn

# Open on Training while something trains. (Not through `default`: a changed default would
# reset the tabs when the run ends.)
st.session_state.setdefault(TAB, TRAINING_TAB if active else SETTINGS_TAB)
settings_tab, training_tab = st.tabs([SETTINGS_TAB, TRAINING_TAB], key=TAB, on_change="rerun")

with settings_tab:
    preset_col, dataset_col = st.columns(2, gap="large")
    with preset_col:
        st.segmented_control("Preset", list(config.PRESETS), key=PRESET, required=True,
                             on_change=_apply_preset, format_func=str.capitalize)
        preset_params = config.preset(st.session_state[PRESET]).to_dict()
        changed = [LABELS[k] for k, v in requested.to_dict().items()
                   if k in LABELS and v != preset_params[k]] if requested else []
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.caption(config.PRESET_DESCRIPTIONS[st.session_state[PRESET]]
                       + (f" ✏️ Changed: {', '.join(changed)}." if changed else ""))
            if changed:
                st.button("Reset", key="train_reset", on_click=_apply_preset, type="tertiary",
                          icon=":material/undo:", help="Back to the preset's settings")
    with dataset_col:
        st.selectbox("Dataset", names, key=DATASET, on_change=_follow_dataset,
                     format_func=lambda n: datasets.DATASETS[n].title)
        missing = [datasets.DATASETS[n].title for n in datasets.DATASETS if n not in names]
        if missing:
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.caption(f"Not on this computer yet: {', '.join(missing)}.")
                st.page_link(common.DATA, label="Get them on the Data page", icon="🖼️")

    architecture_col, network_col = st.columns(2, gap="large")
    with architecture_col:
        st.markdown("##### Architecture")
        st.caption("A conv block is a convolution (+ ReLU), then optionally 2×2 max-pooling, "
                   "which halves the height and width of the feature maps.")
        widths = [0.8, 2, 2, 1.2, 0.8]
        for col, text in zip(st.columns(widths), ["", "Filters", "Kernel", "Pool", ""]):
            col.caption(text)
        for i in range(st.session_state[N_BLOCKS]):
            row = st.columns(widths, vertical_alignment="center")
            row[0].markdown(f"**{i + 1}**")
            key = _block_key(i, "filters")
            row[1].selectbox("Filters", _choices(FILTER_CHOICES, st.session_state[key]),
                             key=key, label_visibility="collapsed")
            key = _block_key(i, "kernel")
            row[2].selectbox("Kernel size", _choices(KERNEL_CHOICES, st.session_state[key]),
                             key=key, label_visibility="collapsed",
                             format_func=lambda k: f"{k} × {k}")
            row[3].toggle("Max-pool", key=_block_key(i, "pool"), label_visibility="collapsed")
            row[4].button("", key=f"train_remove_block{i}", on_click=_remove_block, args=(i,),
                          icon=":material/close:", help=f"Remove block {i + 1}",
                          disabled=st.session_state[N_BLOCKS] == 1)
        st.button("Add a conv block", key="train_add_block", on_click=_add_block,
                  icon=":material/add:", disabled=st.session_state[N_BLOCKS] >= 12)

        cols = st.columns(3)
        cols[0].selectbox("Padding", config.PADDINGS, key=FIELDS["padding"],
                          help="valid: each convolution trims the border (kernel − 1 "
                          "pixels); same: pads it so the size stays.")
        cols[1].text_input("Dense layers", key=DENSE,
                           help="Units of the hidden dense layers after flattening, e.g. "
                           "128, 64. The output layer (one unit per class) is always added.")
        cols[2].slider("Dropout", 0.0, 0.9, step=0.05, key=FIELDS["dropout"],
                       help="Share of activations switched off at random while training.")
        st.toggle("Batch normalisation after each convolution", key=FIELDS["batch_norm"])

    # The summary sits beside the controls that change it.
    with network_col:
        st.markdown("##### The network")
        if problem is not None:
            common.show_error(problem)
        else:
            st.metric("Parameters", f"{total:,}",
                      help="Numbers the network learns: the weights and biases of its layers.")
            st.table(pd.DataFrame(table).style.format({"Parameters": "{:,}"}),
                     hide_index=True, border="horizontal")
            h, w, c = info.image_shape
            st.caption(f"In: {h}×{w}×{c} pixels, scaled to 0–1 by the first layer. "
                       f"Out: one probability for each of the {info.num_classes} classes.")

    st.markdown("##### Compile and train")
    cols = st.columns(4)
    cols[0].selectbox("Optimizer", config.OPTIMIZERS, key=FIELDS["optimizer"])
    key = FIELDS["learning_rate"]
    cols[1].select_slider("Learning rate", _choices(LR_CHOICES, st.session_state[key]),
                          key=key, format_func=lambda v: f"{v:g}",
                          help="How big a step the optimizer takes. Too big: the loss jumps "
                          "around; too small: it learns slowly.")
    key = FIELDS["batch_size"]
    cols[2].selectbox("Batch size", _choices(BATCH_CHOICES, st.session_state[key]), key=key,
                      help="Images per step: the weights change once per batch.")
    cols[3].number_input("Epochs", min_value=1, max_value=1000, step=1, key=FIELDS["epochs"],
                         help="How many times the network sees every training image.")

    with st.expander("Advanced settings"):
        cols = st.columns(4)
        cols[0].selectbox("Learning-rate schedule", config.SCHEDULES,
                          key=FIELDS["lr_schedule"],
                          help="cosine: the learning rate glides down to 0 by the end.")
        cols[1].number_input("Warm-up (epochs)", min_value=0.0, max_value=1000.0, step=0.5,
                             key=FIELDS["warmup_epochs"],
                             help="Start from learning rate 0 and grow to the full rate.")
        cols[2].slider("Label smoothing", 0.0, 0.3, step=0.05, key=FIELDS["label_smoothing"],
                       help="Aim for 90% sure instead of 100%: less over-confidence.")
        cols[3].number_input("Weight decay", min_value=0.0, max_value=1.0, step=1e-4,
                             format="%.4f", key=FIELDS["weight_decay"],
                             disabled=st.session_state[FIELDS["optimizer"]] not in ("adamw",
                                                                                     "sgd"),
                             help="Pulls weights towards 0 (adamw and sgd only).")
        cols = st.columns(4)
        cols[0].toggle("Random horizontal flips", key=FIELDS["augment_flip"],
                       help="Mirror training images at random (not for digits!).")
        cols[1].slider("Random shifts", 0.0, 0.3, step=0.05, key=FIELDS["augment_shift"],
                       help="Move training images by up to this share of their size.")
        cols[2].slider("Validation split", 0.0, 0.5, step=0.05,
                       key=FIELDS["validation_split"],
                       help="Share of the training images held back to check on after "
                       "each epoch.")
        cols[3].number_input("Seed", min_value=0, max_value=2**31 - 1, step=1,
                             key=FIELDS["seed"], help="Same seed, same run.")
        cols = st.columns(4)
        cols[0].toggle("Use only some training images", key=USE_SUBSET)
        cols[1].number_input("Training images", min_value=1, max_value=10_000_000, step=100,
                             key=SUBSET, disabled=not st.session_state[USE_SUBSET])
        cols[2].selectbox("Precision", config.PRECISIONS, key=FIELDS["precision"],
                          help="auto: bfloat16 maths where the hardware is fast at it, "
                          "else float32.")
        if note:
            st.caption(note)

    st.session_state[FORM] = {k: st.session_state[k] for k in _form_keys()
                              if k in st.session_state}

with training_tab:
    all_runs = runs.list_runs()
    if not all_runs:
        wait_for_a_run()
    else:
        ids = [run.id for run in all_runs]
        selected = st.session_state.get(common.SELECTED_RUN)
        if selected not in ids:  # nothing chosen yet: follow what trains, else the newest
            selected = active[0].id if active else ids[0]
        st.session_state[RUN] = selected
        labels = {run.id: common.run_label(run) for run in all_runs}
        st.selectbox("Run", ids, key=RUN, on_change=_pick_run, format_func=labels.__getitem__,
                     label_visibility="collapsed")
        try:
            run = runs.get_run(selected)  # it may have been deleted a moment ago
            status = run.status()
        except CnnError as error:
            common.show_error(error)
        else:
            if status.get("state") in runs.ACTIVE_STATES:
                live_run_view(run.id, status["state"])
            else:
                run_view(run, status)
