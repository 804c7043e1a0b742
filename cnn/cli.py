"""Command line over the same core as the app: `python -m cnn --help`.

Progress goes to stderr; with --json the last line of stdout is one JSON object. Bad input
exits with code 2 and one readable line, a failed run with 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from cnn import config, datasets, own_datasets, presets, runs
from cnn.errors import CnnError, ConfigError
from cnn.store import JsonLinesReader, storage_error

# The training flags: HyperParams fields, each with the type, choices and help its Setting
# declares (one source for the form, the CLI and `validate`).
TRAIN_FLAGS = ("epochs", "batch_size", "learning_rate", "optimizer", "train_size",
               "validation_split", "seed", "precision", "time_limit")


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (and a pointer to --help), not the usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.data_dir:
        os.environ["CNN_DATA_DIR"] = str(args.data_dir)
    try:
        return args.handler(args)
    except CnnError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as error:  # a file we could not write or read: one sentence, exit 1
        print(f"error: {storage_error(error, error.filename or '.', 'use')}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug: one line here, the traceback only when asked for
        if os.environ.get("CNN_DEBUG"):
            raise
        print(f"error: an internal error stopped this command ({type(error).__name__}: "
              f"{error}); run it again with CNN_DEBUG=1 for the details", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--runs-dir", type=Path, default=None,
                        help="where runs live (default: $CNN_RUNS_DIR, else ./runs)")
    common.add_argument("--data-dir", type=Path, default=None,
                        help="where datasets are looked for first (default: $CNN_DATA_DIR)")
    common.add_argument("--json", action="store_true",
                        help="print one JSON object as the last line of stdout")

    parser = _Parser(prog="python -m cnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("datasets", parents=[common], help="list the datasets and where they "
                       "are; add or remove your own")
    p.set_defaults(handler=cmd_datasets)
    own = p.add_subparsers(metavar="ACTION", parser_class=_Parser)
    q = own.add_parser("add", parents=[common], help="add a folder or a zip of class folders "
                       "(cats/..., dogs/...) as a dataset of your own")
    q.add_argument("name", help="the new dataset's name (letters, digits, '_', '-')")
    q.add_argument("path", type=Path, help="a folder or a .zip of class folders")
    q.add_argument("--image-size", type=int, default=None, help="side of the stored square "
                   "images in pixels (default: the images' median, at most "
                   f"{own_datasets.DEFAULT_MAX_SIZE})")
    colour = q.add_mutually_exclusive_group()
    colour.add_argument("--grayscale", dest="grayscale", action="store_const", const=True,
                        default=None, help="store grey images (default: grey only if every "
                        "image is grey)")
    colour.add_argument("--colour", "--color", dest="grayscale", action="store_const",
                        const=False, help="store colour images")
    q.add_argument("--test-split", type=float, default=own_datasets.DEFAULT_TEST_SPLIT,
                   help="share of each class held out as the test set (default "
                   f"{own_datasets.DEFAULT_TEST_SPLIT})")
    q.set_defaults(handler=cmd_datasets_add)
    q = own.add_parser("remove", parents=[common], help="delete a dataset of your own")
    q.add_argument("name")
    q.set_defaults(handler=cmd_datasets_remove)

    p = sub.add_parser("download", parents=[common], help="download a dataset if it is missing")
    p.add_argument("name")
    p.set_defaults(handler=cmd_download)

    p = sub.add_parser("train", parents=[common], help="train a network (waits until done)")
    p.add_argument("--dataset", help="a name from `datasets` (default: the config file's, "
                   f"else {datasets.DEFAULT_DATASET})")
    p.add_argument("--preset", default=presets.DEFAULT, choices=list(presets.PRESETS))
    p.add_argument("--config", type=Path, help="a JSON file of hyperparameters (over the "
                   "preset; the flags below override it)")
    for name in TRAIN_FLAGS:
        setting = config.spec(name)
        kind = {config.INT: int, config.FLOAT: float}.get(setting.kind)
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind,
                       choices=setting.choices or None, help=setting.help)
    p.add_argument("--detach", action="store_true",
                   help="queue the run and return at once (follow it with `runs`)")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("runs", parents=[common], help="list the runs, newest first")
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("stop", parents=[common], help="stop a run after its current batch")
    p.add_argument("run_id")
    p.set_defaults(handler=cmd_stop)

    p = sub.add_parser("set-lr", parents=[common], help="change a running run's learning rate")
    p.add_argument("run_id")
    p.add_argument("learning_rate", type=float)
    p.set_defaults(handler=cmd_set_lr)

    p = sub.add_parser("evaluate", parents=[common], help="test-set metrics of a run")
    p.add_argument("run_id")
    p.add_argument("--recompute", action="store_true",
                   help="evaluate the saved model again instead of reading the stored result")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("predict", parents=[common], help="classify image files with a run's model")
    p.add_argument("run_id")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--top-k", type=int, default=3)
    p.set_defaults(handler=cmd_predict)

    from cnn.cli_explain import add_parser as add_explain_parser

    add_explain_parser(sub, common)
    from cnn.cli_classroom import add_parser as add_classroom_parser

    add_classroom_parser(sub, common)
    return parser


def _emit(args, payload: dict[str, Any], text: str) -> None:
    print(json.dumps(payload) if args.json else text)


def cmd_datasets(args) -> int:
    rows = []
    for name, info in datasets.registry().items():
        where = datasets.locate(name)
        rows.append({"name": name, "title": info.title, "image_shape": list(info.image_shape),
                     "classes": info.num_classes, "train": info.train_size,
                     "test": info.test_size, "on_disk": where is not None,
                     "path": str(where) if where else None, "own": info.own})
    # Damaged own datasets are not in the registry: listed with the reason, to be removed.
    for folder in datasets.data_dirs():
        for item in own_datasets.list_own(folder):
            if item.damaged is not None and all(r["name"] != item.name for r in rows):
                rows.append({"name": item.name, "title": item.name, "own": True,
                             "on_disk": True, "path": str(item.folder),
                             "damaged": item.damaged})
    text = "\n".join(
        f"{r['name']:<14} damaged: {r['damaged']}" if r.get("damaged") else
        f"{r['name']:<14} {r['title']:<22} {'×'.join(map(str, r['image_shape'])):<8} "
        f"{r['classes']:>3} classes {r['train']:>6} train {r['test']:>6} test  "
        + (f"on disk: {r['path']}" if r["on_disk"] else "not downloaded")
        for r in rows)
    _emit(args, {"datasets": rows}, text)
    return 0


def cmd_datasets_add(args) -> int:
    target = datasets.writable_data_dir()
    if target is None:
        folders = ", ".join(str(folder) for folder in datasets.data_dirs())
        raise CnnError(f"None of the data folders can be written to ({folders}); set "
                       "CNN_DATA_DIR or --data-dir to a folder you may write in.")

    shown = []

    def progress(done: int, total: int | None) -> None:
        # A line redrawn in place: only on a terminal (in a log, \r makes one line per file).
        if total and sys.stderr.isatty():
            print(f"\rreading images: {done:,} of {total:,}", end="", file=sys.stderr)
            shown.append(True)

    try:
        report = own_datasets.add(args.name, args.path, target, image_size=args.image_size,
                                  grayscale=args.grayscale, test_split=args.test_split,
                                  progress=progress)
    finally:
        if shown:  # end the progress line, so an error is a line of its own
            print(file=sys.stderr)
    side, _, channels = report.image_shape
    skipped = report.skipped_per_class
    lines = [(f"added {report.name}: {sum(report.kept.values()):,} images in "
              f"{len(report.class_names)} classes, {side}×{side} "
              f"{'grey' if channels == 1 else 'colour'}, in {report.folder} "
              f"({report.seconds:.1f} s)"),
             f"{'class':<20} {'kept':>6} {'skipped':>8} {'train':>6} {'test':>6}"]
    lines += [f"{c:<20} {report.kept[c]:>6} {skipped[c]:>8} {report.train_counts[c]:>6} "
              f"{report.test_counts[c]:>6}" for c in report.class_names]
    lines += [f"skipped: {item.message}" for item in report.skipped]
    _emit(args, report.to_dict(), "\n".join(lines))
    return 0


def cmd_datasets_remove(args) -> int:
    # The dataset may be in any data folder; remove it from the first that holds it.
    folders = datasets.data_dirs()
    holder = next((f for f in folders if own_datasets.locate(args.name, f)), folders[0])
    own_datasets.remove(args.name, holder)
    _emit(args, {"name": args.name, "removed": True}, f"removed {args.name}")
    return 0


def cmd_download(args) -> int:
    info = datasets.get_info(args.name)
    path = datasets.install(args.name, progress=_download_progress(info.title))
    print(file=sys.stderr)
    _emit(args, {"name": args.name, "path": str(path)}, f"{info.title}: {path}")
    return 0


def _hyperparams(args) -> config.HyperParams:
    """The preset, then the config file over it, then the flags given over both."""
    settings: dict[str, Any] = dict(presets.PRESETS[args.preset])
    if args.config:
        try:
            text = args.config.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"Cannot read the config file {args.config} "
                              f"({getattr(error, 'strerror', None) or error}).") from None
        from_file = config.HyperParams.from_json(text)  # ConfigError names what is wrong
        given = json.loads(text)
        settings.update({key: value for key, value in from_file.to_dict().items()
                         if key in given})
    flags = {name: getattr(args, name) for name in ("dataset", *TRAIN_FLAGS)}
    settings.update({key: value for key, value in flags.items() if value is not None})
    settings.setdefault("dataset", datasets.DEFAULT_DATASET)
    return config.HyperParams.from_dict(settings)


def cmd_train(args) -> int:
    params = _hyperparams(args)
    info = datasets.get_info(params.dataset)
    params.validate(info.image_shape, info.num_classes)
    if not datasets.is_available(params.dataset):
        # Download here, with progress, so a missing dataset offline fails fast with exit 2.
        datasets.install(params.dataset, progress=_download_progress(info.title))
    run = runs.create_run(params, args.runs_dir, extra_status={"preset": args.preset})
    print(f"run {run.id} queued", file=sys.stderr)
    if args.detach:
        _emit(args, {"run_id": run.id, "status": run.state()}, run.id)
        return 0
    status = _follow(run)
    payload = {
        "run_id": run.id, "status": status["state"], "message": status.get("message"),
        "epochs_completed": status.get("epochs_completed", 0),
        "test_loss": status.get("test_loss"), "test_accuracy": status.get("test_accuracy"),
        "train_images_per_second": status.get("train_images_per_second"),
        "seconds": status.get("fit_seconds", status.get("train_seconds")),
    }
    text = f"{run.id}: {status['state']} — {status.get('message', '')}"
    _emit(args, payload, text)
    return 1 if status["state"] in (runs.FAILED, runs.INTERRUPTED) else 0


def _download_progress(title: str):
    def report(done: int, total: int | None) -> None:
        share = f" of {total / 1e6:.1f} MB" if total else " MB"
        print(f"\rdownloading {title}: {done / 1e6:.1f}{share}", end="", file=sys.stderr)
    return report


def _follow(run: runs.Run, poll: float = 0.5) -> dict[str, Any]:
    """Print progress to stderr until the run ends; Ctrl+C asks it to stop (and waits)."""
    reader = JsonLinesReader(run.metrics_path)
    shown = 0
    last_message = None
    while True:
        try:
            status = run.status()
            records = runs.clean_records(reader.read())
            for record in records[shown:]:
                if record.get("kind") == "epoch":
                    print(_epoch_line(record), file=sys.stderr)
            shown = len(records)
            if status.get("message") != last_message:
                last_message = status.get("message")
                print(f"[{status['state']}] {last_message}", file=sys.stderr)
            if status["state"] in runs.FINAL_STATES:
                return status
            time.sleep(poll)
        except KeyboardInterrupt:
            print("stopping after the current batch (Ctrl+C again to leave it running)…",
                  file=sys.stderr)
            try:
                run.request_stop()
            except CnnError:
                pass


def _epoch_line(r: dict[str, Any]) -> str:
    """One line per epoch record, e.g. "epoch 2: loss 0.4120 accuracy 0.8531 ..." """
    def fmt(key):
        value = r.get(key)
        return "—" if value is None else f"{value:.4f}"
    speed = r.get("images_per_second")
    return (f"epoch {r['epoch']}{' (partial)' if r.get('partial') else ''}: "
            f"loss {fmt('loss')} accuracy {fmt('accuracy')} val_loss {fmt('val_loss')} "
            f"val_accuracy {fmt('val_accuracy')}"
            + (f" — {speed:,.0f} img/s" if speed else ""))


def cmd_runs(args) -> int:
    rows = []
    for run in runs.list_runs(args.runs_dir):
        status = run.status()
        try:
            params = run.config
            dataset, epochs = params.dataset, params.epochs
        except CnnError as error:
            dataset, epochs = "?", None
            status = {**status, "problem": status.get("problem") or str(error)}
        rows.append({"run_id": run.id, "status": status["state"], "dataset": dataset,
                     "epochs": epochs, "epochs_completed": status.get("epochs_completed", 0),
                     "test_accuracy": status.get("test_accuracy"),
                     "message": status.get("message"), "problem": status.get("problem")})
    text = "\n".join(
        f"{r['run_id']:<36} {r['status']:<11} {r['dataset']:<14} "
        f"{r['epochs_completed']}/{r['epochs'] or '?'} epochs  "
        + (f"test accuracy {r['test_accuracy']:.1%}" if r["test_accuracy"] is not None else "")
        + (f"  (damaged: {r['problem']})" if r["problem"] else "")
        for r in rows) or "no runs yet"
    _emit(args, {"runs": rows}, text)
    return 0


def cmd_stop(args) -> int:
    run = runs.get_run(args.run_id, args.runs_dir)
    run.request_stop()
    _emit(args, {"run_id": run.id, "stop_requested": True},
          f"asked {run.id} to stop after its current batch")
    return 0


def cmd_set_lr(args) -> int:
    run = runs.get_run(args.run_id, args.runs_dir)
    run.set_learning_rate(args.learning_rate)
    _emit(args, {"run_id": run.id, "learning_rate": args.learning_rate},
          f"{run.id}: learning rate set to {args.learning_rate:g}")
    return 0


def cmd_evaluate(args) -> int:
    run = runs.get_run(args.run_id, args.runs_dir)
    result = None if args.recompute else run.evaluation()
    if result is None:
        from cnn.evaluation import evaluate_run

        result = evaluate_run(run)
    lines = [f"test loss {result['test_loss']:.4f}  test accuracy {result['test_accuracy']:.2%}",
             f"{'class':<16} precision recall  f1     support"]
    lines += [f"{c['class']:<16} {c['precision']:.3f}     {c['recall']:.3f}   {c['f1']:.3f}  "
              f"{c['support']}" for c in result["per_class"]]
    _emit(args, {"run_id": run.id, **result}, "\n".join(lines))
    return 0


def cmd_predict(args) -> int:
    from cnn import inference
    from cnn.checkpoints import load_model

    run = runs.get_run(args.run_id, args.runs_dir)
    if not run.has_model():
        raise CnnError(f"Run {run.id} has no trained model yet.")
    if args.top_k < 1:
        raise CnnError("--top-k must be at least 1.")
    info = datasets.get_info(run.config.dataset)
    model = load_model(run.model_path)
    files, read_errors = [], {}
    for path in args.images:
        try:
            files.append((str(path), path.read_bytes()))
        except OSError as error:
            read_errors[str(path)] = f"Cannot read {path}: {error.strerror}."
    results = {r.name: r for r in inference.classify_files(
        model, files, info.image_shape, info.class_names, info.light_on_dark,
        top_k=args.top_k, framing=info.framing)}
    payload, lines = [], []
    for path in args.images:
        name = str(path)
        error = read_errors.get(name) or results[name].error
        if error:
            payload.append({"image": name, "error": error})
            lines.append(f"{name}: error: {error}")
            continue
        prediction = results[name].prediction
        payload.append({"image": name, "labels": prediction.labels,
                        "probabilities": prediction.probabilities})
        lines.append(f"{name}: " + ", ".join(
            f"{label} {p:.1%}" for label, p in zip(prediction.labels, prediction.probabilities)))
    _emit(args, {"run_id": run.id, "predictions": payload}, "\n".join(lines))
    return 2 if any("error" in p for p in payload) else 0
