"""What the Train form describes: its settings, checked in the one place that checks them
(`HyperParams.validate`), and the network they make, planned on paper (nothing is built in
the server)."""

from __future__ import annotations

import dataclasses

from app_pages.form_state import read_params
from cnn import architecture, datasets
from cnn.config import HyperParams
from cnn.errors import CnnError


@dataclasses.dataclass
class Described:
    requested: HyperParams | None  # as the form says
    params: HyperParams | None  # what will be trained (None when the form has a problem)
    problem: CnnError | None
    note: str | None  # e.g. "all of them are used"
    table: list[dict]  # the network's layers, planned (no Keras)
    total: int  # parameters


def describe(info: datasets.DatasetInfo) -> Described:
    """One HyperParams from the form, checked in the one place that checks them, and the
    network it makes (worked out on paper: nothing is built in the server)."""
    requested = params = None
    note = None
    try:
        requested = read_params(info.name)
        if requested.train_size is not None and \
                datasets.usable_train_size(info, requested) is None:
            available = info.train_size - round(requested.validation_split * info.train_size)
            note = (f"{info.title} has {available:,} training images after the validation "
                    "split: all of them are used.")
        params = requested.replace(train_size=datasets.usable_train_size(info, requested))
        params.validate(info.image_shape, info.num_classes)
        rows = architecture.plan(params, info.image_shape, info.num_classes)
    except CnnError as error:
        return Described(requested, None, error, note, [], 0)
    table = [{"Layer": row.name, "Type": row.kind,
              "Output shape": "×".join(str(d) for d in row.output_shape),
              "Parameters": row.parameters} for row in rows]
    return Described(requested, params, None, note, table,
                     architecture.parameter_count(rows))


