"""The class leaderboard: every finished run of a dataset, best test accuracy first, with
who trained it, what they changed from their preset, and how long it took — and the data
for one chart of test accuracy against a chosen setting, so a class sees what each knob
did."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnn import architecture, datasets, presets, runs
from cnn.errors import CnnError

# Settings a class can put on the chart's x axis: name -> (label, log scale?).
KNOBS = {
    "learning_rate": ("Learning rate", True),
    "epochs": ("Epochs", False),
    "batch_size": ("Batch size", True),
    "filters": ("Filters in all conv blocks", False),
    "parameters": ("Parameters", True),
    "dropout": ("Dropout", False),
    "conv_blocks": ("Conv blocks", False),
}


@dataclass(frozen=True)
class Entry:
    run_id: str
    name: str  # "Alex · Digits · fast #3", or the run id for runs without one
    owner: str
    test_accuracy: float
    preset: str
    changes: str  # "epochs 7, learning rate 0.002", or "" for the preset as it is
    seconds: float | None  # fit() time
    knobs: dict[str, float]  # the chart's x values


def entries(dataset: str, root: str | Path | None = None) -> list[Entry]:
    """Finished (or stopped) runs of `dataset` with a test accuracy, best first; runs with
    damaged files are left out."""
    found = []
    for run in runs.list_runs(root):
        status = run.status()
        accuracy = status.get("test_accuracy")
        if status.get("state") not in (runs.FINISHED, runs.STOPPED) or accuracy is None:
            continue
        try:
            params = run.config
        except CnnError:
            continue
        if params.dataset != dataset:
            continue
        name = status.get("preset")
        if name in presets.PRESETS:
            base = presets.preset(name, dataset=dataset)
            diff = presets.changes(params, base)
        else:
            name, diff = presets.closest(params)
        changed = ", ".join(f"{presets.LABELS.get(k, k)} {presets.describe_value(k, v)}"
                            for k, v in diff.items())
        found.append(Entry(run.id, str(status.get("name") or run.id),
                           str(status.get("owner") or "—"), float(accuracy), name, changed,
                           status.get("fit_seconds", status.get("train_seconds")),
                           _knobs(params)))
    return sorted(found, key=lambda e: -e.test_accuracy)


def _knobs(params) -> dict[str, float]:
    values: dict[str, Any] = {
        "learning_rate": params.learning_rate, "epochs": params.epochs,
        "batch_size": params.batch_size, "dropout": params.dropout,
        "filters": sum(block.filters for block in params.conv_blocks),
        "conv_blocks": len(params.conv_blocks),
    }
    try:
        info = datasets.get_info(params.dataset)
        values["parameters"] = architecture.parameter_count(
            architecture.plan(params, info.image_shape, info.num_classes))
    except CnnError:
        pass
    return values
