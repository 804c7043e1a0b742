"""How far a run is: the progress bar's fraction and line, and durations as people say them.

One home for what the Train page, Home and the CLI show while a run trains.
"""

from __future__ import annotations


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress(records: list[dict], epochs: int, detailed: bool = True) -> tuple[float, str] | None:
    """(fraction done, "Epoch 2 of 10 · batch 120 of 704 · 1,234 images/s · about 1 min
    left") from the latest records; None before the first batch. `detailed=False` stops
    after the batch count (Home's short line)."""
    steps = [r for r in records if r.get("kind") in ("batch", "epoch")]
    if not steps:
        return None
    first, last = steps[0], steps[-1]
    per_epoch = last["batches_per_epoch"]
    total = epochs * per_epoch
    parts = [f"Epoch {last['epoch']} of {epochs}", f"batch {last['batch']} of {per_epoch}"]
    if detailed:
        speed = next((r["images_per_second"] for r in reversed(steps)
                      if r.get("images_per_second")), None)
        if speed:
            parts.append(f"{speed:,.0f} images/s")
        # Timed from the first record: the first batch includes building the graph.
        if last["step"] > first["step"] and last["step"] < total:
            per_step = (last["elapsed"] - first["elapsed"]) / (last["step"] - first["step"])
            parts.append(f"about {duration((total - last['step']) * per_step)} left")
    return min(1.0, last["step"] / total), " · ".join(parts)


def epochs_text(epochs: float | None) -> str:
    """Epochs trained as a number people read: 3, or 2.4 for a run stopped mid-epoch."""
    if epochs is None:
        return "?"
    return f"{epochs:g}"
