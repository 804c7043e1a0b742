"""The Train page's Settings tab: widgets made from the HyperParams settings (their labels,
help and limits are declared once, in cnn.config); their state is `form_state`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import common
from app_pages.form_state import (DATASET, DENSE, N_BLOCKS, PRESET, SUBSET, TIME_LIMIT, USE_SUBSET,
                                  USE_TIME_LIMIT, add_block, apply_preset, block_key, key,
                                  preset_name, preset_params, remember, remove_block)
from app_pages.planned_network import Described
from cnn import config, datasets, presets

FILTER_CHOICES = [4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512]
KERNEL_CHOICES = [1, 3, 5, 7]
LR_CHOICES = [1e-5, 3e-5, 1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
BATCH_CHOICES = [8, 16, 32, 64, 128, 256, 512]


def _choices(options: list, value) -> list:
    """`options` plus `value` if it is missing (a preset or an old form may hold any value)."""
    return options if value in options else sorted([*options, value])


# --- the widgets --------------------------------------------------------------------------
def _follow_dataset() -> None:
    st.session_state[common.DATASET] = st.session_state[DATASET]


def _number(column, field: str, **kwargs) -> None:
    spec = config.spec(field)
    column.number_input(spec.label, key=key(field), help=spec.help,
                        step=float(spec.step or 1), **kwargs)


def _slider(column, field: str) -> None:
    spec = config.spec(field)
    column.slider(spec.label, float(spec.low), float(spec.high) - (
        spec.step if spec.high_open else 0), step=spec.step, key=key(field), help=spec.help)


def _select(column, field: str, options=None, **kwargs) -> None:
    spec = config.spec(field)
    column.selectbox(spec.label, options or spec.choices, key=key(field), help=spec.help,
                     **kwargs)


def _toggle(column, field: str) -> None:
    spec = config.spec(field)
    column.toggle(spec.label, key=key(field), help=spec.help)


def settings(info: datasets.DatasetInfo, names: list[str], described: Described) -> None:
    """The whole Settings tab."""
    preset_col, dataset_col = st.columns(2, gap="large")
    with preset_col:
        st.segmented_control("Preset", list(presets.PRESETS), key=PRESET, required=True,
                             on_change=apply_preset, format_func=str.capitalize)
        changed = (presets.changed_labels(described.requested, preset_params())
                   if described.requested else [])
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.caption(presets.DESCRIPTIONS[preset_name()]
                       + (f" ✏️ Changed: {', '.join(changed)}." if changed else ""))
            if changed:
                st.button("Reset", key="train_reset", on_click=apply_preset, type="tertiary",
                          icon=":material/undo:", help="Back to the preset's settings")
    with dataset_col:
        known = datasets.registry()
        st.selectbox("Dataset", names, key=DATASET, on_change=_follow_dataset,
                     format_func=lambda n: known[n].title if n in known else n)
        missing = [info_.title for name, info_ in known.items() if name not in names]
        if missing:
            with st.container(horizontal=True, vertical_alignment="center", gap="small"):
                st.caption(f"Not on this computer yet: {common.md(', '.join(missing))}.")
                st.page_link(common.DATA, label="Get them on the Data page", icon="🖼️")

    architecture_col, network_col = st.columns(2, gap="large")
    with architecture_col:
        _architecture_editor()
    # The summary sits beside the controls that change it.
    with network_col:
        st.markdown("##### The network")
        if described.problem is not None:
            common.show_error(described.problem)
        else:
            st.metric("Parameters", f"{described.total:,}",
                      help="Numbers the network learns: the weights and biases of its layers.")
            st.table(pd.DataFrame(described.table).style.format({"Parameters": "{:,}"}),
                     hide_index=True, border="horizontal")
            h, w, c = info.image_shape
            st.caption(f"In: {h}×{w}×{c} pixels, scaled to 0–1 by the first layer. "
                       f"Out: one probability for each of the {info.num_classes} classes.")

    st.markdown("##### Compile and train")
    cols = st.columns(4)
    _select(cols[0], "optimizer")
    spec = config.spec("learning_rate")
    cols[1].select_slider(spec.label, _choices(LR_CHOICES, st.session_state[key(
        "learning_rate")]), key=key("learning_rate"), format_func=lambda v: f"{v:g}",
        help=spec.help)
    _select(cols[2], "batch_size", _choices(BATCH_CHOICES, st.session_state[key("batch_size")]))
    _number(cols[3], "epochs", format="%g")

    with st.expander("Advanced settings"):
        cols = st.columns(4)
        _select(cols[0], "lr_schedule")
        _number(cols[1], "warmup_epochs", format="%g")
        _slider(cols[2], "label_smoothing")
        _number(cols[3], "weight_decay", format="%.4f",
                disabled=st.session_state[key("optimizer")] not in ("adamw", "sgd"))
        cols = st.columns(4)
        _toggle(cols[0], "augment_flip")
        _slider(cols[1], "augment_shift")
        _slider(cols[2], "validation_split")
        _number(cols[3], "seed", format="%.0f")
        cols = st.columns(4)
        cols[0].toggle("Use only some training images", key=USE_SUBSET)
        spec = config.spec("train_size")
        cols[1].number_input(spec.short_label, step=100.0, key=SUBSET, format="%g", help=spec.help,
                             disabled=not st.session_state[USE_SUBSET])
        _select(cols[2], "precision")
        cols[3].toggle("Stop after a time limit", key=USE_TIME_LIMIT,
                       help="Train for a fixed time, then stop and test, as Stop does.")
        if st.session_state[USE_TIME_LIMIT]:
            spec = config.spec("time_limit")
            cols[3].number_input(spec.short_label, step=10.0, key=TIME_LIMIT, format="%g",
                                 help=spec.help)
        if described.note:
            st.caption(described.note)
    remember()


def _architecture_editor() -> None:
    st.markdown("##### Architecture")
    st.caption("A conv block is a convolution (+ ReLU), then optionally 2×2 max-pooling, "
               "which halves the height and width of the feature maps.")
    widths = [0.8, 2, 2, 1.2, 0.8]
    for col, text in zip(st.columns(widths), ["", "Filters", "Kernel", "Pool", ""]):
        col.caption(text)
    for i in range(st.session_state[N_BLOCKS]):
        row = st.columns(widths, vertical_alignment="center")
        row[0].markdown(f"**{i + 1}**")
        k = block_key(i, "filters")
        row[1].selectbox("Filters", _choices(FILTER_CHOICES, st.session_state[k]),
                         key=k, label_visibility="collapsed")
        k = block_key(i, "kernel")
        row[2].selectbox("Kernel size", _choices(KERNEL_CHOICES, st.session_state[k]),
                         key=k, label_visibility="collapsed",
                         format_func=lambda size: f"{size} × {size}")
        row[3].toggle("Max-pool", key=block_key(i, "pool"), label_visibility="collapsed")
        row[4].button("", key=f"train_remove_block{i}", on_click=remove_block, args=(i,),
                      icon=":material/close:", help=f"Remove block {i + 1}",
                      disabled=st.session_state[N_BLOCKS] == 1)
    st.button("Add a conv block", key="train_add_block", on_click=add_block,
              icon=":material/add:",
              disabled=st.session_state[N_BLOCKS] >= config.MAX_CONV_BLOCKS)

    cols = st.columns(3)
    _select(cols[0], "padding")
    spec = config.spec("dense_units")
    cols[1].text_input(spec.label, key=DENSE, help=spec.help)
    _slider(cols[2], "dropout")
    _toggle(st, "batch_norm")
