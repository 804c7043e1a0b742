"""Train the ready-made models that ship in assets/ready/ (see cnn/ready_models.py).

    CNN_DATA_DIR=../shared/datasets python benchmarks/train_ready_models.py

Each is an ordinary run of the app — `runs.create_run` then `training.execute`, the same
code as the Train page's Start — on the real dataset, with a preset and seed named below;
the run folder is then tidied for shipping (the model saved without its optimizer's state,
the worker's files dropped, a name and owner set) and copied to assets/ready/<id>/. The
test accuracies are printed and written to bench-out/ready_models.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# (folder id, dataset, preset, changes). Digits: the drawings preset (robust to how people
# draw), else the tutorial's net; Fashion-MNIST: the preset made for accuracy per second.
MODELS = [
    ("ready-digits", "digits", "drawings", {"seed": 1}),
    ("ready-fashion_mnist", "fashion_mnist", "efficient", {"seed": 1}),
]


def main() -> int:
    from cnn import datasets, presets, runs
    from cnn.checkpoints import load_model, save_model
    from cnn.jobs import StatusWriter
    from cnn.training import execute

    target = REPO / "assets" / "ready"
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run_id, dataset, preset_name, changes in MODELS:
            if preset_name not in presets.PRESETS:
                preset_name = "tutorial"
            if not datasets.is_available(dataset):
                print(f"{dataset} is not here: skipped (set CNN_DATA_DIR)", file=sys.stderr)
                continue
            info = datasets.get_info(dataset)
            params = presets.for_dataset(preset_name, dataset, info.mirror_safe, **changes)
            run = runs.create_run(params, Path(tmp), start=False)
            status = execute(run)
            if status["state"] != runs.FINISHED:
                print(f"{dataset}: {status['message']}", file=sys.stderr)
                return 1
            # Ship the network only: its optimizer's state (2x its size) is for training.
            save_model(load_model(run.model_path), run.model_path)
            for leftover in ("worker.log", "worker.json", "control.json"):
                (run.path / leftover).unlink(missing_ok=True)
            StatusWriter(run).update(
                name=f"Ready-made · {info.title} · {preset_name}", owner="CNN Playground",
                owner_id="", preset=preset_name, ready=True)
            shutil.rmtree(target / run_id, ignore_errors=True)
            shutil.copytree(run.path, target / run_id)
            figures[run_id] = {"dataset": dataset, "preset": preset_name, **changes,
                               "test_accuracy": status["test_accuracy"],
                               "fit_seconds": status.get("fit_seconds"),
                               "model_bytes": (target / run_id / "model.keras").stat().st_size}
            print(f"{run_id}: {dataset} {preset_name} test accuracy "
                  f"{status['test_accuracy']:.2%} in {status.get('fit_seconds', 0):.0f} s")
    out = REPO / "bench-out" / "ready_models.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
