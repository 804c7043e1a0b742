"""The Train page's form state: session-state keys <-> one HyperParams, and what the
form describes (the network, planned on paper).

Every widget's key is "train_" + the field's name; conv blocks are rows of three widgets.
Streamlit forgets the keys of widgets not drawn, so a copy of the form (FORM) brings it
back after a visit to another page.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from app_pages import common
from cnn import datasets, lesson_links, presets
from cnn.config import ConvBlock, HyperParams
from cnn.errors import ConfigError

PRESET = "train_preset"
LAST_PRESET = "train_preset_last"  # the last real choice (see preset_name)
DATASET = "train_dataset"
N_BLOCKS = "train_n_blocks"  # how many conv-block rows the editor shows (not a widget)
FORM = "train_form"  # a copy of the form's values: Streamlit forgets widget state elsewhere
LINK = "train_link"  # the settings of the link last applied to (or written from) the form

# Scalar settings drawn as widgets (dataset, conv blocks and dense units are special).
SCALARS = [f.name for f in dataclasses.fields(HyperParams)
           if f.name not in ("dataset", "conv_blocks", "dense_units", "train_size",
                             "time_limit")]
USE_SUBSET, SUBSET = "train_use_subset", "train_subset"
USE_TIME_LIMIT, TIME_LIMIT = "train_use_time_limit", "train_time_limit"
DENSE = "train_dense"

def key(field: str) -> str:
    return f"train_{field}"


def block_key(i: int, part: str) -> str:
    return f"train_block{i}_{part}"


def _form_keys() -> list[str]:
    keys = [*map(key, SCALARS), DENSE, USE_SUBSET, SUBSET, USE_TIME_LIMIT, TIME_LIMIT, PRESET]
    for i in range(st.session_state.get(N_BLOCKS, 0)):
        keys += [block_key(i, "filters"), block_key(i, "kernel"), block_key(i, "pool")]
    return keys


# --- form state <-> HyperParams ----------------------------------------------------------
def write_blocks(blocks: list[ConvBlock]) -> None:
    st.session_state[N_BLOCKS] = len(blocks)
    for i, block in enumerate(blocks):
        st.session_state[block_key(i, "filters")] = block.filters
        st.session_state[block_key(i, "kernel")] = block.kernel_size
        st.session_state[block_key(i, "pool")] = block.pool


def read_blocks() -> list[ConvBlock]:
    s = st.session_state
    return [ConvBlock(s[block_key(i, "filters")], s[block_key(i, "kernel")],
                      s[block_key(i, "pool")]) for i in range(s[N_BLOCKS])]


def write_params(params: HyperParams) -> None:
    """Fill every widget of the form from `params` (the dataset select is left alone)."""
    for field in SCALARS:
        st.session_state[key(field)] = _shown(field, getattr(params, field))
    st.session_state[DENSE] = ", ".join(str(units) for units in params.dense_units)
    st.session_state[USE_SUBSET] = params.train_size is not None
    st.session_state[SUBSET] = float(params.train_size or 1000)
    st.session_state[USE_TIME_LIMIT] = params.time_limit is not None
    st.session_state[TIME_LIMIT] = float(params.time_limit or 60)
    write_blocks(params.conv_blocks)


# Whole-number settings typed into a box are float widgets: an int widget silently turns
# "2.5" into 2 and a too-big "1e9" into its limit; as floats, `validate` says what is wrong.
_TYPED_WHOLE = ("epochs", "seed")


def _shown(field: str, value: Any) -> Any:
    return float(value) if field in _TYPED_WHOLE else value


def _whole(value: Any) -> Any:
    """A float from a typed box back to an int when it is whole (else left for validate)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def read_params(dataset: str) -> HyperParams:
    """The HyperParams the widgets describe (not validated yet)."""
    s = st.session_state
    return HyperParams(
        dataset=dataset,
        conv_blocks=read_blocks(),
        dense_units=_parse_units(s[DENSE]),
        train_size=_whole(s[SUBSET]) if s[USE_SUBSET] else None,
        time_limit=float(s[TIME_LIMIT]) if s[USE_TIME_LIMIT] else None,
        **{field: _whole(s[key(field)]) if field in _TYPED_WHOLE else s[key(field)]
           for field in SCALARS},
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


def preset_name() -> str:
    """The chosen preset. The segmented control can report no choice (a click that lands
    while the page redraws); the last real choice then stands."""
    name = st.session_state.get(PRESET)
    if name in presets.PRESETS:
        st.session_state[LAST_PRESET] = name
        return name
    return st.session_state.get(LAST_PRESET, presets.DEFAULT)


def repair_preset() -> None:
    """Put the last real choice back into the control (before it is drawn, or in a
    callback), so that it never shows no preset."""
    st.session_state[PRESET] = preset_name()


def preset_params(name: str | None = None) -> HyperParams:
    """The chosen preset as it applies to the chosen dataset (no flips for digits)."""
    name = name or preset_name()
    info = datasets.get_info(st.session_state.get(DATASET) or datasets.DEFAULT_DATASET)
    return presets.for_dataset(name, info.name, info.mirror_safe)


def apply_preset() -> None:
    if st.session_state.get(PRESET) not in presets.PRESETS:
        repair_preset()  # no choice reported: keep the form as it is
        return
    write_params(preset_params())


def add_block() -> None:
    blocks = read_blocks()
    last = blocks[-1] if blocks else ConvBlock()
    write_blocks([*blocks, ConvBlock(last.filters, last.kernel_size, last.pool)])


def remove_block(index: int) -> None:
    blocks = read_blocks()
    write_blocks(blocks[:index] + blocks[index + 1:])


def restore(names: list[str]) -> tuple[datasets.DatasetInfo, list[str]]:
    """Bring the form back: from a lesson link when the page was opened with one, else as
    it was before a visit elsewhere (the first time: the default preset). Settles the
    dataset on one that is here. Its record, and what was wrong with the link."""
    if FORM in st.session_state:
        for k, value in st.session_state[FORM].items():
            st.session_state.setdefault(k, value)
    else:
        st.session_state[PRESET] = presets.DEFAULT
        write_params(presets.preset(presets.DEFAULT))
    problems = _apply_link(names)
    wanted_preset = st.session_state.pop(common.WANTED_PRESET, None)
    if wanted_preset in presets.PRESETS:  # asked for by another page (Make a dataset)
        st.session_state[PRESET] = wanted_preset
        st.session_state[DATASET] = st.session_state[common.DATASET]
        write_params(preset_params(wanted_preset))
    wanted = st.session_state[common.DATASET]
    st.session_state[DATASET] = wanted if wanted in names else names[0]
    repair_preset()
    return datasets.get_info(st.session_state[DATASET]), problems


def _link_settings() -> dict[str, str]:
    return {k: v for k, v in st.query_params.to_dict().items()
            if k not in lesson_links.VIEW_KEYS}


def _apply_link(names: list[str]) -> list[str]:
    """Fill the form from the link's settings when a browser opens a link (once per
    session: from then on the form is the truth and writes itself into the link, see
    `write_link`; a rerun may still carry the link from before the last change)."""
    query = _link_settings()
    if not query or LINK in st.session_state:
        return []
    st.session_state[LINK] = tuple(sorted(query.items()))
    default = st.session_state.get(DATASET) or names[0]
    preset_name, params, problems = lesson_links.from_query(query, default)
    if params.dataset not in names:
        problems.append(f"The link's dataset “{params.dataset}” is not on this computer; "
                        f"{datasets.get_info(names[0]).title} is used.")
        params = params.replace(dataset=names[0])
    st.session_state[common.DATASET] = st.session_state[DATASET] = params.dataset
    st.session_state[PRESET] = preset_name
    write_params(params)
    return problems


def write_link(requested: HyperParams | None) -> None:
    """Put the form's settings into the link (only what differs from the preset), so a
    refresh keeps them and the address bar is a lesson link."""
    if requested is None:
        return
    query = lesson_links.to_query(requested, preset_name())
    for key in set(_link_settings()) - set(query):
        del st.query_params[key]
    for key, value in query.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    st.session_state[LINK] = tuple(sorted(query.items()))


def remember() -> None:
    """Keep a copy of the form for the next visit (call after drawing it)."""
    st.session_state[FORM] = {k: st.session_state[k] for k in _form_keys()
                              if k in st.session_state}
