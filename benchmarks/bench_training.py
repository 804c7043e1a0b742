"""Training benchmarks whose figures go in the README. Not a test: run it by hand.

    CNN_DATA_DIR=../shared/datasets python benchmarks/bench_training.py [--only a,b,c,d]

(a) the run engine (live metrics, stop/learning-rate control, per-epoch checkpoints) vs a
    bare `model.fit` of the same model on the same data, alternated in one process;
(b) training speed and test accuracy of the tutorial net on CIFAR-shaped data (50,000
    32×32×3 images) through the engine vs the seed's plain Keras script (float `x / 255.0`,
    batch 64, `fit`), each in its own process;
(c) wall time of training to ≥ 92 % Fashion-MNIST test accuracy with the `efficient` preset;
(d) peak memory (max RSS) of the training process for (b).

CIFAR-10 cannot be downloaded here, so the CIFAR-shaped data is real Fashion-MNIST padded
to 32×32 and repeated over 3 channels, written in the exact CIFAR-10 pickle format and read
through the product's own CIFAR-10 loader. The machine is noisy: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def write_cifar_shaped(folder: Path) -> Path:
    """Fashion-MNIST as a CIFAR-10 folder (cifar-10-batches-py/) in the original format."""
    import numpy as np

    from cnn import datasets

    data = datasets.load("fashion_mnist", download_missing=False)
    target = folder / "cifar-10-batches-py"
    target.mkdir(parents=True, exist_ok=True)

    def to_rows(x):  # (N, 28, 28, 1) -> (N, 3072) rows of R, G, B planes like CIFAR
        padded = np.pad(x[..., 0], ((0, 0), (2, 2), (2, 2)))
        return np.repeat(padded[:, None], 3, axis=1).reshape(len(x), -1)

    parts = [(f"data_batch_{i + 1}", slice(i * 10_000, (i + 1) * 10_000)) for i in range(5)]
    for name, rows in parts:
        batch = {b"data": to_rows(data.x_train[rows]), b"labels": data.y_train[rows].tolist()}
        (target / name).write_bytes(pickle.dumps(batch, protocol=2))
    test = {b"data": to_rows(data.x_test), b"labels": data.y_test.tolist()}
    (target / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {b"label_names": [n.encode() for n in data.info.class_names]}
    (target / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def run_child(code: str, env: dict[str, str] | None = None) -> dict:
    """Run Python code in a fresh process; its last stdout line is JSON. Adds peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env={**os.environ, **(env or {}),
                                          "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all of them: only trust it when it grew.
    result["peak_rss_mb"] = peak_kb / 1024 if peak_kb > before else None
    return result


THROUGHPUT_CALLBACK = """
import time, keras
class Throughput(keras.callbacks.Callback):
    # Same method as cnn.callbacks.MetricsRecorder: from the end of each epoch's first batch
    # to its last batch, so graph tracing and validation are excluded on both sides.
    def __init__(self, batch_size):
        super().__init__(); self.batch_size = batch_size; self.images = 0; self.seconds = 0.0
    def on_epoch_begin(self, epoch, logs=None):
        self.first = None
    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last batch done (several per call with
        # steps_per_execution), so count from it, not from the number of calls.
        now = time.perf_counter()
        if self.first is None:
            self.first, self.first_batch = now, batch
        self.n = (batch - self.first_batch) * self.batch_size
        self.last = now
    def on_epoch_end(self, epoch, logs=None):
        self.images += self.n; self.seconds += self.last - self.first
"""


def bench_engine_vs_fit(repeats: int, train_images: int, epochs: int) -> dict:
    """(a) Same model, same data, same fit(): with the run's callbacks vs none."""
    import keras

    from cnn import datasets, models, runs
    from cnn.callbacks import MetricsRecorder, RunController
    from cnn.presets import preset
    from cnn.jobs import StatusWriter
    from cnn.training import _RunProgress

    data = datasets.load("fashion_mnist", download_missing=False)
    x, y = data.x_train[:train_images], data.y_train[:train_images]
    params = preset("tutorial", dataset="fashion_mnist", epochs=epochs)
    steps = -(-len(x) // params.batch_size)
    times = {"bare fit": [], "run engine": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            order = ["bare fit", "run engine"] if i % 2 == 0 else ["run engine", "bare fit"]
            for kind in order:
                keras.utils.set_random_seed(params.seed)
                model = models.compile_model(
                    models.make_model(params, data.info.image_shape, 10), params)
                callbacks = []
                if kind == "run engine":
                    run = runs.create_run(params, Path(tmp), start=False)
                    controller = RunController(run.control_path, params.learning_rate,
                                               steps * epochs)
                    callbacks = [controller,
                                 MetricsRecorder(run.metrics_path, params.batch_size, steps),
                                 _RunProgress(StatusWriter(run), run, controller)]
                start = time.perf_counter()
                model.fit(x, y, batch_size=params.batch_size, epochs=epochs, shuffle=True,
                          verbose=0, callbacks=callbacks)
                times[kind].append(time.perf_counter() - start)
                print(f"  (a) {kind}: {times[kind][-1]:.2f} s", file=sys.stderr)
    bare, engine = statistics.median(times["bare fit"]), statistics.median(times["run engine"])
    return {"bare_fit_seconds": times["bare fit"], "engine_seconds": times["run engine"],
            "speed_ratio_engine_vs_bare": bare / engine, "target": ">= 0.98",
            "train_images": train_images, "epochs": epochs}


def bench_speed_vs_seed(data_dir: Path, repeats: int, images: int) -> dict:
    """(b, speed) The seed's fit (float64 `x / 255.0`, float32 model, one batch per call)
    vs the engine's (uint8 input, Rescaling in the model, bfloat16 where supported, up to
    16 batches per call), same net and data, alternated in one process, one epoch each."""
    result = run_child(THROUGHPUT_CALLBACK + f"""
import json, statistics
import keras
from keras import layers, models, losses
from cnn import datasets, models as cnn_models
from cnn.presets import preset
from cnn.training import steps_per_execution
data = datasets.load("cifar10", download_missing=False)
x, y = data.x_train[:{images}], data.y_train[:{images}].astype("int32")
def seed():
    model = models.Sequential([
        layers.Input((32, 32, 3)),
        layers.Conv2D(32, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation='relu'), layers.Flatten(),
        layers.Dense(64, activation='relu'), layers.Dense(10)])
    model.compile(optimizer='adam', metrics=['accuracy'],
                  loss=losses.SparseCategoricalCrossentropy(from_logits=True))
    meter = Throughput(64)
    model.fit(x / 255.0, y, epochs=1, batch_size=64, verbose=0, callbacks=[meter])
    return meter.images / meter.seconds
def engine():
    params = preset("tutorial", dataset="cifar10")
    model = cnn_models.compile_model(cnn_models.make_model(params, (32, 32, 3), 10), params,
                                     steps_per_execution=steps_per_execution(len(x) // 64))
    meter = Throughput(64)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[meter])
    return meter.images / meter.seconds
speeds = {{"seed": [], "engine": []}}
for i in range({repeats}):
    for name, f in ((("seed", seed), ("engine", engine)) if i % 2 == 0
                    else (("engine", engine), ("seed", seed))):
        speeds[name].append(f())
ratios = [e / s for e, s in zip(speeds["engine"], speeds["seed"])]
print(json.dumps({{**speeds, "ratio_median": statistics.median(ratios), "ratios": ratios}}))
""", env={"CNN_DATA_DIR": str(data_dir)})
    print(f"  (b) speed: {result}", file=sys.stderr)
    return {**result, "images": images, "target": ">= 2"}


def bench_tutorial_vs_seed(data_dir: Path, epochs: int) -> dict:
    """(b) + (d): the engine vs the seed's script on 50,000 CIFAR-shaped images."""
    ours = run_child(f"""
        import json
        from cnn import runs
        from cnn.presets import preset
        from cnn.training import execute
        # No validation hold-out: the same 50,000 training images as the seed script.
        run = runs.create_run(preset("tutorial", dataset="cifar10", epochs={epochs},
                                     validation_split=0.0),
                              {str(data_dir / 'runs')!r}, start=False)
        status = execute(run)
        print(json.dumps({{k: status.get(k) for k in ("state", "test_accuracy",
            "train_images_per_second", "train_seconds", "train_images", "precision")}}))
    """, env={"CNN_DATA_DIR": str(data_dir)})
    print(f"  (b) engine: {ours}", file=sys.stderr)
    seed = run_child(THROUGHPUT_CALLBACK + f"""
import json
import numpy as np
from keras import layers, models, losses
from cnn import datasets
data = datasets.load("cifar10", download_missing=False)
(train_images, train_labels), (test_images, test_labels) = \\
    (data.x_train, data.y_train), (data.x_test, data.y_test)
# The tutorial, as written: normalize pixel values to be between 0 and 1.
train_images, test_images = train_images / 255.0, test_images / 255.0
model = models.Sequential()
model.add(layers.Conv2D(32, (3, 3), activation='relu', input_shape=(32, 32, 3)))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.MaxPooling2D((2, 2)))
model.add(layers.Conv2D(64, (3, 3), activation='relu'))
model.add(layers.Flatten())
model.add(layers.Dense(64, activation='relu'))
model.add(layers.Dense(10))
model.compile(optimizer='adam',
              loss=losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=['accuracy'])
meter = Throughput(64)
history = model.fit(train_images, train_labels, epochs={epochs}, verbose=0,
                    validation_data=(test_images, test_labels), callbacks=[meter])
test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
print(json.dumps({{"test_accuracy": test_acc, "train_images_per_second":
                  meter.images / meter.seconds, "train_images": len(train_images)}}))
""", env={"CNN_DATA_DIR": str(data_dir)})
    print(f"  (b) seed script: {seed}", file=sys.stderr)
    return {
        "epochs": epochs, "engine": ours, "seed_script": seed,
        "speed_ratio_engine_vs_seed":
            ours["train_images_per_second"] / seed["train_images_per_second"],
        "target_speed": ">= 2", "peak_rss_mb_engine": ours["peak_rss_mb"],
        "target_peak_rss_mb": "<= 1200",
    }


def bench_time_to_92(preset_name: str, **overrides) -> dict:
    """(c) Fit time of the preset on Fashion-MNIST and the test accuracy it reaches."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run_child(f"""
            import json
            from cnn import runs
            from cnn.presets import preset
            from cnn.training import execute
            run = runs.create_run(preset({preset_name!r}, dataset="fashion_mnist",
                                         **{overrides!r}), {tmp!r}, start=False)
            status = execute(run)
            epochs = [r for r in run.metrics() if r["kind"] == "epoch"]
            print(json.dumps({{**{{k: status.get(k) for k in ("state", "test_accuracy",
                "train_seconds", "train_images_per_second", "epochs_completed", "precision")}},
                "val_accuracy_by_epoch": [round(r["val_accuracy"], 4) for r in epochs],
                "elapsed_by_epoch": [round(r["elapsed"], 1) for r in epochs]}}))
        """)
    print(f"  (c) {result}", file=sys.stderr)
    return {"preset": preset_name, **result, "target": ">= 0.92 in <= 45 s of training"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="a,b,c", help="which of a,b,c (d comes with b)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for (b)")
    parser.add_argument("--repeats", type=int, default=3, help="alternations for (a)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "training.json")
    args = parser.parse_args()
    from cnn import datasets

    if not datasets.is_available("fashion_mnist"):
        sys.exit("Needs Fashion-MNIST: set CNN_DATA_DIR (e.g. ../shared/datasets).")
    results: dict = {"machine": {"cpus": os.cpu_count(), "processor": platform.processor(),
                                 "python": platform.python_version()}}
    only = set(args.only.split(","))
    if "a" in only:
        results["a_engine_vs_bare_fit"] = bench_engine_vs_fit(args.repeats, 20_000, 2)
    if "b" in only or "d" in only:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = write_cifar_shaped(Path(tmp))
            results["b_speed_vs_seed"] = bench_speed_vs_seed(data_dir, args.repeats, 25_000)
            results["b_d_tutorial_vs_seed"] = bench_tutorial_vs_seed(data_dir, args.epochs)
    if "c" in only:
        results["c_time_to_92"] = bench_time_to_92("efficient")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
