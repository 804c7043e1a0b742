"""Learning curves and progress from a run's metrics records, as plain data for the UI."""

from __future__ import annotations

import math

import pandas as pd

TRAINING, VALIDATION = "Training", "Validation"
BATCHES, EPOCHS = "recent batches", "whole epoch"


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
    first value."""
    out = []
    for value in values:
        out.append(value if not out else weight * out[-1] + (1 - weight) * value)
    return out


def training_curves(records: list[dict], metric: str, batch_size: int) -> pd.DataFrame:
    """Long-form rows (epoch, value, split, kind) for one metric's chart: a smoothed
    training curve over the batches, and per-epoch training and validation points."""
    rows = []
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


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress(records: list[dict], epochs: int) -> tuple[float, str] | None:
    """(fraction done, "Epoch 2 of 10 · batch 120 of 704 · 1,234 images/s · about 1 min
    left") from the latest records; None before the first batch."""
    if not records:
        return None
    first, last = records[0], records[-1]
    per_epoch = last["batches_per_epoch"]
    total = epochs * per_epoch
    parts = [f"Epoch {last['epoch']} of {epochs}", f"batch {last['batch']} of {per_epoch}"]
    speed = next((r["images_per_second"] for r in reversed(records)
                  if r.get("images_per_second")), None)
    if speed:
        parts.append(f"{speed:,.0f} images/s")
    # Timed from the first record: the first batch includes building the graph.
    if last["step"] > first["step"] and last["step"] < total:
        per_step = (last["elapsed"] - first["elapsed"]) / (last["step"] - first["step"])
        parts.append(f"about {duration((total - last['step']) * per_step)} left")
    return min(1.0, last["step"] / total), " · ".join(parts)


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
