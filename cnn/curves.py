"""Learning curves from a run's metrics records, as plain data (pandas) for the charts."""

from __future__ import annotations

import math

import pandas as pd

TRAINING, VALIDATION = "Training", "Validation"
BATCHES, EPOCHS, START = "recent batches", "whole epoch", "before training"


def recent_batch_values(records: list[dict], metric: str, batch_size: int) -> list[tuple]:
    """(x in epochs, value) per batch record: the metric over the batches since the record
    before.

    Keras logs a running mean from the start of the epoch, which flattens out and jumps at
    each new epoch; undoing the mean between two records shows how the network does now.
    """
    points = []
    previous = None  # (epoch, images seen this epoch, running mean)
    for r in records:
        if r.get("kind") != "batch" or r.get(metric) is None:
            continue
        seen = r["batch"] * batch_size
        mean = r[metric]
        if previous and previous[0] == r["epoch"] and seen > previous[1]:
            value = (seen * mean - previous[1] * previous[2]) / (seen - previous[1])
        else:
            value = mean
        if metric == "accuracy":
            value = min(max(value, 0.0), 1.0)
        previous = (r["epoch"], seen, mean)
        points.append((r["step"] / r["batches_per_epoch"], value))
    return points


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """Exponential moving average (like TensorBoard's smoothing slider), starting at the
    first value: out[i] = weight·out[i−1] + (1−weight)·value[i]."""
    if not values:
        return []
    return pd.Series(values, dtype=float).ewm(alpha=1 - weight, adjust=False).mean().tolist()


def training_curves(records: list[dict], metric: str, batch_size: int) -> pd.DataFrame:
    """Long-form rows (epoch, value, split, kind) for one metric's chart: the untrained
    network's value, a smoothed training curve over the batches, and per-epoch training
    and validation points."""
    rows = []
    start = next((r for r in records if r.get("kind") == "start"), None)
    if start is not None and start.get(metric) is not None:
        # The untrained network, measured before the first batch: the chart's first point.
        rows.append({"epoch": 0.0, "value": start[metric], "split": TRAINING, "kind": START})
    recent = recent_batch_values(records, metric, batch_size)
    # At most ~400 points per curve: a long run stays light to redraw every second.
    every = max(1, math.ceil(len(recent) / 400))
    smoothed = smooth([value for _, value in recent])
    for i, ((x, _), value) in enumerate(zip(recent, smoothed)):
        if i % every == 0 or i == len(recent) - 1:
            rows.append({"epoch": x, "value": value, "split": TRAINING, "kind": BATCHES})
    for r in records:
        if r.get("kind") != "epoch":
            continue
        x = r["step"] / r["batches_per_epoch"]
        if r.get(metric) is not None:
            rows.append({"epoch": x, "value": r[metric], "split": TRAINING, "kind": EPOCHS})
        if r.get(f"val_{metric}") is not None:
            rows.append({"epoch": x, "value": r[f"val_{metric}"], "split": VALIDATION,
                         "kind": EPOCHS})
    return pd.DataFrame(rows, columns=["epoch", "value", "split", "kind"])


def learning_rate_changes(records: list[dict]) -> pd.DataFrame:
    """(epoch, text) of each live learning-rate change, for markers on the charts."""
    rows = [{"epoch": r["step"] / r["batches_per_epoch"],
             "text": f"learning rate {r['from']:.2g} → {r['to']:.2g}"}
            for r in records if r.get("kind") == "event" and r.get("event") == "learning_rate"
            and r.get("batches_per_epoch") and isinstance(r.get("from"), (int, float))
            and isinstance(r.get("to"), (int, float))]
    return pd.DataFrame(rows, columns=["epoch", "text"])


def epoch_metrics(records: list[dict]) -> pd.DataFrame:
    """One row per (epoch, metric, split) from the run's epoch records, for Altair."""
    rows = []
    for record in records:
        if record.get("kind") != "epoch":
            continue
        for metric, key in (("Loss", "loss"), ("Accuracy", "accuracy")):
            for split, prefix in ((TRAINING, ""), (VALIDATION, "val_")):
                value = record.get(prefix + key)
                if value is not None:
                    rows.append({"epoch": record["epoch"], "metric": metric,
                                 "split": split, "value": value})
    return pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])
