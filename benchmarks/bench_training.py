"""Training benchmarks whose figures go in the README (issue 11). Not a test: run it by hand.

    CNN_DATA_DIR=../shared/datasets python benchmarks/bench_training.py [--only cpu,a,b,c]

cpu  the CPU (lscpu's model name and the flags that matter: AVX2, AVX-512, AVX512-BF16,
     AMX), whether `precision: auto` uses bfloat16 here, and TensorFlow's matmul peak on it
     (4096x4096, float32, and bfloat16 where the CPU is fast at it), all threads;
(a)  the run engine (live metrics, stop/learning-rate control, per-epoch checkpoints) vs a
     bare `model.fit` of the same model on the same data, alternated in one process;
(b)  whole runs, timed as whole processes: `python -m cnn train --dataset cifar10 --preset
     tutorial --epochs 2 --validation-split 0` vs the seed's plain Keras script (`x /
     255.0`, batch 64, `fit` with the test set as validation data, `evaluate`), alternated
     --repeats times; where each second of ours goes (worker start, load and build, fit,
     save and test, from the run's status), the peak memory of our worker (its own
     figure, `peak_memory_mb`) and of the seed's process (psutil, sampled); the step loop's
     share of the matmul peak (images/s x training FLOPs per image, worked out from the
     planned layers: 3x the forward pass);
(c)  time to accuracy on Fashion-MNIST with the presets a teacher picks for it: `fit()`
     wall time with its validation passes (the last epoch record's `elapsed`, which
     status.json's `fit_seconds` equals) and the test accuracy reached; and, on a CPU with
     fast bfloat16, the same with bfloat16 forced off (precision float32).

CIFAR-10 cannot be downloaded here, so the CIFAR-shaped data is real Fashion-MNIST padded
to 32x32 and repeated over 3 channels, written in the exact CIFAR-10 pickle format and read
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
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile",
                     "amx_bf16", "amx_int8")
# (c): the presets for Fashion-MNIST and the targets of issue 11.
TARGETS = {"efficient": (0.92, 30.0), "strong": (0.93, 90.0)}


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
    from cnn.jobs import StatusWriter
    from cnn.presets import preset
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



# --- the CPU --------------------------------------------------------------------------------
def cpu() -> dict:
    """lscpu's model and the flags that matter; what `precision: auto` picks here."""
    from cnn import runtime

    model, flags = platform.processor() or "unknown", ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        model = fields.get("Model name", model).strip()
        flags = fields.get("Flags", "")
    except (OSError, subprocess.CalledProcessError):
        flags = runtime._cpu_flags()
    have = [f for f in FLAGS_THAT_MATTER if f in flags.split()]
    return {"model": model, "cpus": os.cpu_count(), "flags": have,
            "fast_bfloat16": runtime.cpu_has_fast_bf16(flags),
            "python": platform.python_version()}


def matmul_peak(dtypes: list[str], size: int = 4096, repeats: int = 6) -> dict:
    """TensorFlow's matmul speed on this CPU, GFLOP/s per dtype (the best of `repeats`)."""
    return run_child(f"""
        import json, time
        import tensorflow as tf
        found = {{}}
        for name in {dtypes!r}:
            a = tf.random.normal(({size}, {size}), dtype=getattr(tf, name))
            b = tf.random.normal(({size}, {size}), dtype=getattr(tf, name))
            f = tf.function(lambda a, b: tf.matmul(a, b))
            f(a, b).numpy()
            times = []
            for _ in range({repeats}):
                t = time.perf_counter(); f(a, b).numpy(); times.append(time.perf_counter() - t)
            found[name] = 2 * {size} ** 3 / min(times) / 1e9
        print(json.dumps(found))
    """)


def training_flops_per_image(params, image_shape, num_classes) -> float:
    """3x the forward pass's multiply-adds x 2, from the planned layers (convolutions:
    weights x output positions; dense: weights)."""
    from cnn import architecture

    forward = 0.0
    for row in architecture.plan(params, image_shape, num_classes):
        if row.kind == "Conv2D":
            height, width, channels = row.output_shape
            forward += 2 * (row.parameters - channels) * height * width
        elif row.kind == "Dense":
            forward += 2 * (row.parameters - row.output_shape[-1])
    return 3 * forward


# --- (b) whole runs --------------------------------------------------------------------------
def timed_process(args: list[str], env: dict[str, str]) -> dict:
    """Wall time of a whole process, and its peak memory (psutil, sampled every 50 ms)."""
    peak = 0
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env, "PYTHONPATH": str(REPO),
                                 "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=REPO)
    watched = psutil.Process(proc.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.wait(0.05):
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(err[-3000:])
    return {"seconds": seconds, "peak_rss_mb": peak / 2**20,
            "result": json.loads(out.strip().splitlines()[-1])}


SEED_SCRIPT = THROUGHPUT_CALLBACK + """
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
history = model.fit(train_images, train_labels, epochs=EPOCHS, verbose=0,
                    validation_data=(test_images, test_labels), callbacks=[meter])
test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
print(json.dumps({"test_accuracy": test_acc, "train_images_per_second":
                  meter.images / meter.seconds, "train_images": len(train_images)}))
"""


def bench_whole_runs(data_dir: Path, repeats: int, epochs: int) -> dict:
    """(b) Ours (the CLI, which starts a worker) vs the seed's script, as whole processes."""
    from cnn import runs

    env = {"CNN_DATA_DIR": str(data_dir), "CNN_OFFLINE": "1", "CNN_WARM_WORKER": "0"}
    ours_cmd = [sys.executable, "-m", "cnn", "train", "--dataset", "cifar10", "--preset",
                "tutorial", "--epochs", str(epochs), "--validation-split", "0",
                "--runs-dir", str(data_dir / "runs"), "--json"]
    seed_cmd = [sys.executable, "-c", SEED_SCRIPT.replace("EPOCHS", str(epochs))]
    trials = {"ours": [], "seed": []}
    for i in range(repeats):
        for name in (("ours", "seed") if i % 2 == 0 else ("seed", "ours")):
            trial = timed_process(ours_cmd if name == "ours" else seed_cmd, env)
            if name == "ours":
                status = runs.get_run(trial["result"]["run_id"], data_dir / "runs").status()
                trial["phases_s"] = {
                    "process start, import, queue, worker start": trial["seconds"] - (
                        status["finished"] - status["started"]),
                    "load and build": status["prepare_seconds"],
                    "fit": status["fit_seconds"], "save and test": status["test_seconds"]}
                trial["worker_peak_memory_mb"] = status["peak_memory_mb"]
                trial["train_images_per_second"] = status["train_images_per_second"]
                trial["precision"] = status["precision"]
            else:
                trial["train_images_per_second"] = trial["result"]["train_images_per_second"]
            trial["test_accuracy"] = trial["result"]["test_accuracy"]
            trials[name].append(trial)
            print(f"  (b) {name}: {trial['seconds']:.1f} s, test "
                  f"{trial['test_accuracy']:.3f}", file=sys.stderr)
    ours = statistics.median(t["seconds"] for t in trials["ours"])
    seed = statistics.median(t["seconds"] for t in trials["seed"])
    return {"epochs": epochs, "trials": trials, "ours_median_s": ours, "seed_median_s": seed,
            "whole_run_speedup": seed / ours, "target_speedup": ">= 4",
            "worker_peak_memory_mb": max(t["worker_peak_memory_mb"] for t in trials["ours"]),
            "seed_peak_memory_mb": max(t["peak_rss_mb"] for t in trials["seed"]),
            "target_peak_memory_mb": "<= 1200"}


# --- (c) time to accuracy ---------------------------------------------------------------------
def bench_time_to_accuracy(preset_name: str, precision: str = "auto") -> dict:
    """(c) Fit time of the preset on Fashion-MNIST and the test accuracy it reaches."""
    with tempfile.TemporaryDirectory() as tmp:
        result = run_child(f"""
            import json
            from cnn import datasets, runs
            from cnn.presets import for_dataset
            from cnn.training import execute
            info = datasets.get_info("fashion_mnist")
            run = runs.create_run(for_dataset({preset_name!r}, "fashion_mnist",
                                              info.mirror_safe, precision={precision!r}),
                                  {tmp!r}, start=False)
            status = execute(run)
            epochs = [r for r in run.metrics() if r["kind"] == "epoch"]
            print(json.dumps({{**{{k: status.get(k) for k in ("state", "test_accuracy",
                "fit_seconds", "train_images_per_second", "epochs_completed", "precision",
                "peak_memory_mb")}},
                "fit_elapsed_last_epoch": epochs[-1]["elapsed"],
                "val_accuracy_by_epoch": [round(r["val_accuracy"], 4) for r in epochs],
                "elapsed_by_epoch": [round(r["elapsed"], 1) for r in epochs]}}))
        """)
    target_accuracy, target_seconds = TARGETS.get(preset_name, (None, None))
    result.update(preset=preset_name, target_accuracy=target_accuracy,
                  target_fit_seconds=target_seconds)
    if target_accuracy:
        result["reached"] = (result["test_accuracy"] >= target_accuracy
                             and result["fit_seconds"] <= target_seconds)
    print(f"  (c) {preset_name} ({precision}): {result['test_accuracy']:.4f} after "
          f"{result['fit_seconds']:.1f} s", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="cpu,a,b,c", help="which of cpu,a,b,c")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for (b)")
    parser.add_argument("--repeats", type=int, default=3, help="alternations for (a), (b)")
    parser.add_argument("--presets", default="efficient",
                        help="presets for (c), e.g. efficient,strong")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "training.json")
    args = parser.parse_args()
    from cnn import datasets
    from cnn.presets import preset

    if not datasets.is_available("fashion_mnist"):
        sys.exit("Needs Fashion-MNIST: set CNN_DATA_DIR (e.g. ../shared/datasets).")
    only = set(args.only.split(","))
    results: dict = {"cpu": cpu()}
    fast_bf16 = results["cpu"]["fast_bfloat16"]
    print(f"CPU: {results['cpu']}", file=sys.stderr)

    def save():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))

    if "cpu" in only or "b" in only:
        results["matmul_gflops"] = matmul_peak(["float32"] + ["bfloat16"] * fast_bf16)
        print(f"  matmul peak: {results['matmul_gflops']}", file=sys.stderr)
        save()
    if "a" in only:
        results["a_engine_vs_bare_fit"] = bench_engine_vs_fit(args.repeats, 20_000, 2)
        save()
    if "b" in only:
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = write_cifar_shaped(Path(tmp))
            found = bench_whole_runs(data_dir, args.repeats, args.epochs)
        flops = training_flops_per_image(preset("tutorial"), (32, 32, 3), 10)
        images_per_second = statistics.median(t["train_images_per_second"]
                                              for t in found["trials"]["ours"])
        precision = found["trials"]["ours"][0]["precision"]
        peak = results["matmul_gflops"]["bfloat16" if "bfloat16" in precision else "float32"]
        found["step_loop"] = {
            "training_mflop_per_image": flops / 1e6, "images_per_second": images_per_second,
            "gflops": images_per_second * flops / 1e9, "matmul_peak_gflops": peak,
            "share_of_peak": images_per_second * flops / 1e9 / peak,
            "target_share": ">= 0.40 of the bfloat16 peak on a CPU with AMX"}
        results["b_whole_runs"] = found
        save()
    if "c" in only:
        results["c_time_to_accuracy"] = [bench_time_to_accuracy(name)
                                         for name in args.presets.split(",")]
        if fast_bf16:  # nothing may get slower without bfloat16
            results["c_time_to_accuracy"] += [
                bench_time_to_accuracy(name, "float32") for name in args.presets.split(",")]
        save()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
