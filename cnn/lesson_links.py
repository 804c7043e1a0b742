"""Lesson links: a training configuration as readable URL query parameters, and back.

Only what differs from the preset goes into the link, with the settings' own names:
    /train?dataset=digits&preset=fast&epochs=7&learning_rate=0.002
Conv blocks read "32x3p-64x3p-64x3" (filters × kernel, "p" for max-pooling), dense layers
"128-64" ("none" for no hidden layer), "all" for no training subset or time limit. A link
with a wrong value gives one readable sentence per problem and the preset's value.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from cnn import config, presets
from cnn.config import BOOL, CHOICE, INT, ConvBlock, HyperParams
from cnn.errors import ConfigError

VIEW_KEYS = ("presenter", "follow", "hide", "run", "token", "me", "test", "class")
_BLOCK = re.compile(r"^(\d{1,4})x(\d{1,2})(p?)$")


def _block_text(block: ConvBlock) -> str:
    return f"{block.filters}x{block.kernel_size}{'p' if block.pool else ''}"


def value_text(name: str, value: Any) -> str:
    """A setting's value as it reads in a link."""
    if name == "conv_blocks":
        return "-".join(_block_text(b if isinstance(b, ConvBlock) else ConvBlock(**b))
                        for b in value)
    if name == "dense_units":
        return "-".join(map(str, value)) or "none"
    if value is None:
        return "all"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def to_query(params: HyperParams, preset_name: str) -> dict[str, str]:
    """The query parameters of a lesson link for `params` (chosen starting from a preset)."""
    base = presets.preset(preset_name, dataset=params.dataset)
    query = {"dataset": params.dataset, "preset": preset_name}
    for name, value in presets.changes(params, base).items():
        query[name] = value_text(name, value)
    return query


def _parse(name: str, text: str) -> Any:
    """One setting from its link text; ConfigError naming what is wrong."""
    text = text.strip()
    if name == "conv_blocks":
        blocks = []
        for part in text.split("-"):
            match = _BLOCK.match(part)
            if not match:
                raise ConfigError(f"conv_blocks “{text}” should read like 32x3p-64x3p-64x3 "
                                  "(filters × kernel, p for pooling).")
            blocks.append({"filters": int(match[1]), "kernel_size": int(match[2]),
                           "pool": bool(match[3])})
        return blocks
    if name == "dense_units":
        if text in ("none", ""):
            return []
        try:
            return [int(part) for part in text.split("-")]
        except ValueError:
            raise ConfigError(f"dense_units “{text}” should read like 128-64.") from None
    spec = config.spec(name)
    if spec.optional and text in ("all", "none", ""):
        return None
    if spec.kind == BOOL:
        if text.lower() in ("on", "true", "1", "yes"):
            return True
        if text.lower() in ("off", "false", "0", "no"):
            return False
        raise ConfigError(f"{spec.label} is on or off, not “{text}”.")
    if spec.kind == CHOICE:
        return text
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{spec.label} must be a number, not “{text}”.") from None
    if spec.kind == INT:
        if not math.isfinite(number) or not number.is_integer():
            raise ConfigError(f"{spec.label} must be a whole number, not “{text}”.")
        return int(number)
    return number


def from_query(query: dict[str, str], default_dataset: str) -> tuple[str, HyperParams,
                                                                   list[str]]:
    """(preset name, settings, problems) from a link's query parameters. Each value that
    is unknown or invalid is left at the preset's value and named in `problems`; the
    settings returned always validate (except against the dataset's image size)."""
    problems = []
    preset_name = query.get("preset", presets.DEFAULT)
    if preset_name not in presets.PRESETS:
        problems.append(f"There is no preset “{preset_name}”; the "
                        f"{presets.DEFAULT} preset is used.")
        preset_name = presets.DEFAULT
    dataset = query.get("dataset") or default_dataset
    params = presets.preset(preset_name, dataset=dataset)
    fields = {f.name for f in dataclasses.fields(HyperParams)} - {"dataset"}
    for name, text in query.items():
        if name in ("dataset", "preset") or name in VIEW_KEYS:
            continue
        if name not in fields:
            problems.append(f"The link's “{name}” is not a setting; it was left out.")
            continue
        try:
            changed = params.replace(**{name: _parse(name, text)})
            changed.validate()
        except ConfigError as error:
            problems.append(f"{error} The preset's value is used.")
            continue
        params = changed
    return preset_name, params, problems
