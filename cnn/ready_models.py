"""Ready-made models: small trained networks that ship with the app (digits, and Fashion-
MNIST trained on the real data), so Evaluate, Classify and the look inside the network
work from the first minute — as ConvNetJS's "load a pretrained network" does.

They are whole run folders in `assets/ready/`, made by `benchmarks/train_ready_models.py`
(which says how), and copied into the runs folder the first time the app starts there;
a student can delete them like any run, and they do not come back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cnn import runs
from cnn.store import StorageError, atomic_write_json, read_json

SHIPPED = Path(__file__).resolve().parent.parent / "assets" / "ready"
ENV = "CNN_READY_MODELS"  # "0": do not copy them in (the test suite)
MARKER = ".ready-models.json"  # the ready-made runs already copied here (or deleted since)


def shipped() -> list[Path]:
    try:
        return sorted(p for p in SHIPPED.iterdir() if (p / "model.keras").is_file())
    except OSError:
        return []


def install(root: str | Path | None = None) -> list[str]:
    """Copy the ready-made runs into the runs folder, once: a run deleted later is not
    copied again. The ids copied now (none when switched off or the disk is full)."""
    if os.environ.get(ENV, "1") == "0":
        return []
    root = runs.runs_dir(root)
    done = read_json(root / MARKER, default=[])
    done = done if isinstance(done, list) else []
    copied = []
    for folder in shipped():
        if folder.name in done or (root / folder.name).exists():
            continue
        staging = root / f".{folder.name}.new"
        try:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, staging, dirs_exist_ok=True)
            os.replace(staging, root / folder.name)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return copied  # the runs folder cannot take them now: the app works without
        copied.append(folder.name)
    if copied:
        try:
            atomic_write_json(root / MARKER, sorted(set(done) | set(copied)))
        except StorageError:
            pass
    return copied
