"""Drawings the network gets right: digits drawn on the app's real canvas, classified by a
digits network trained with the `drawings` preset and one trained with `tutorial`. Not a
test: run it by hand, on a quiet machine.

    python benchmarks/bench_drawings.py [--people 16] [--seeds 3] [--reuse]

1. The app is served as for the browser test (tests/live_app.py: its own folders, offline)
   and driven by headless Chromium at 1280x720. On the "Make your own" page a draft with the
   classes 0-9 is made, and every digit is drawn by each of `--people` made-up people with
   the real mouse on the real canvas, then added with the page's button; the page stores
   each as a PNG (cnn.dataset_drafts). The strokes stand in for people's drawings; how they
   are made is in tests/pen_strokes.py: a handwriting style per digit (open or closed 4,
   7 with or without a bar, ...), and per person a size (45-90 % of the canvas), aspect,
   slant, tilt, shaky hand and pen width (the page's slider: 10-36 px, the default 24
   commonest), each drawing placed anywhere on the canvas. These people are not in the
   scikit-learn digits (written by 43 people of the UCI study). Each saved drawing is checked
   to hold all of its strokes (its ink's box against the strokes' box) and drawn again if not.
2. The drawings are copied to bench-out/drawings/<digit>/<person>.png.
3. For each seed, two networks are trained on scikit-learn's digits through the CLI
   (`python -m cnn train --dataset digits --preset P --seed S`, the same engine as the app)
   and classify every drawing through the CLI (`python -m cnn predict`, the same code as the
   Classify page). Accuracy per preset: mean over seeds, and per digit and per pen width.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import live_app  # noqa: E402  (tests/live_app.py: the server and page helpers)
from playwright.sync_api import expect, sync_playwright  # noqa: E402
import pen_strokes  # noqa: E402  (tests/pen_strokes.py: the people and their strokes)

DRAFT = "people_digits"
PRESETS = ("tutorial", "drawings")
PAGE_TIMEOUT_MS = 60_000


def set_slider(page, label: str, value: int) -> None:
    """Move the slider labelled `label` to `value` with the keyboard, as a person can."""
    thumb = page.get_by_role("slider", name=label)
    thumb.focus()
    now = int(thumb.get_attribute("aria-valuetext"))
    for _ in range(abs(value - now)):
        thumb.press("ArrowRight" if value > now else "ArrowLeft")
    expect(thumb).to_have_attribute("aria-valuetext", str(value))
    live_app.wait_until_idle(page)


def ink_box(path: Path, scale: float) -> tuple[float, float, float, float] | None:
    """The box of a saved drawing's ink, in canvas pixels."""
    pixels = np.asarray(Image.open(path).convert("L")) > 64
    if not pixels.any():
        return None
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return cols[0] / scale, rows[0] / scale, (cols[-1] + 1) / scale, (rows[-1] + 1) / scale


def complete(path: Path, paths, pen: int) -> bool:
    """Whether the saved drawing holds all its strokes: its ink's box is the strokes' box
    grown by half the pen width (within a few pixels)."""
    size = Image.open(path).size[0]
    box = ink_box(path, size / 280)
    if box is None:
        return False
    xs = [x for p in paths for x, _ in p]
    ys = [y for p in paths for _, y in p]
    want = (min(xs) - pen / 2, min(ys) - pen / 2, max(xs) + pen / 2, max(ys) + pen / 2)
    return all(abs(a - b) <= 8 for a, b in zip(box, want))


def examples(folder: Path) -> list[Path]:
    """A draft class's saved examples (<n>.png; not the hidden one being written)."""
    return [p for p in folder.glob("*.png") if p.stem.isdigit()]


def draw_digits(app, page, folks, draft_dir: Path) -> list[dict]:
    """Every person draws every digit on the real canvas; returns one record per drawing."""
    page.goto(f"{app.url}/make_dataset")
    page.get_by_role("heading", level=1, name="Make a dataset").wait_for(
        timeout=PAGE_TIMEOUT_MS)
    live_app.wait_until_idle(page)
    page.get_by_role("textbox", name="Name", exact=True).fill(DRAFT)
    page.get_by_role("textbox", name="Classes, one per line (2 to 10)").fill(
        "\n".join(pen_strokes.DIGITS))
    page.get_by_role("button", name="Create").click()
    page.get_by_text("Add examples to").wait_for(timeout=PAGE_TIMEOUT_MS)
    live_app.wait_until_idle(page)
    records = []
    classes = page.get_by_role("radiogroup", name="Add examples to")
    add = page.get_by_role("button", name="Add this drawing to")
    for index, person in enumerate(folks):
        set_slider(page, "Pen width", person.pen)
        rng = np.random.default_rng(person.seed)
        for digit in pen_strokes.DIGITS:
            radio = classes.get_by_role("radio", name=digit, exact=True)
            if radio.get_attribute("aria-checked") != "true":
                radio.click()
                expect(radio).to_have_attribute("aria-checked", "true")
                live_app.wait_until_idle(page)
            paths = pen_strokes.strokes(digit, person, rng)
            for attempt in range(4):
                before = len(examples(draft_dir / digit))
                canvas = page.locator("canvas.upper-canvas")
                canvas.wait_for(timeout=PAGE_TIMEOUT_MS)
                started = time.monotonic()
                pen_strokes.draw_on_canvas(page, canvas, paths)
                seconds = time.monotonic() - started
                # The canvas sends itself after each stroke; let the last one arrive.
                page.wait_for_timeout(300)
                live_app.wait_until_idle(page)
                try:
                    expect(add).to_be_enabled(timeout=10_000)
                except AssertionError:  # the canvas missed the stroke: draw it again
                    continue
                add.click()
                deadline = time.monotonic() + 30
                while len(examples(draft_dir / digit)) <= before:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"drawing of {digit} was not saved")
                    time.sleep(0.05)
                live_app.wait_until_idle(page)
                saved = max(examples(draft_dir / digit), key=lambda p: int(p.stem))
                if complete(saved, paths, person.pen):
                    break
                saved.unlink()  # a stroke went missing: draw it again
            else:
                raise RuntimeError(f"person {index} could not draw {digit} in 4 attempts")
            records.append({"person": index, "digit": digit, "pen": person.pen,
                            "style": person.styles[digit], "path": str(saved),
                            "attempts": attempt + 1, "draw_seconds": round(seconds, 2)})
        print(f"person {index + 1}/{len(folks)} drew 0-9", file=sys.stderr)
    return records


def cli(*args: str, runs_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CNN_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "cnn", *args, "--runs-dir", str(runs_dir),
                           "--json"], capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode not in (0, 2) or not proc.stdout.strip():
        raise RuntimeError(f"cnn {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def evaluate(records: list[dict], seeds: int, runs_dir: Path) -> dict:
    files = [r["path"] for r in records]
    truth = np.array([r["digit"] for r in records])
    results = {}
    for preset in PRESETS:
        per_seed = []
        for seed in range(seeds):
            started = time.monotonic()
            run = cli("train", "--dataset", "digits", "--preset", preset, "--seed", str(seed),
                      runs_dir=runs_dir)
            train_seconds = time.monotonic() - started
            answer = cli("predict", run["run_id"], *files, "--top-k", "1", runs_dir=runs_dir)
            said = np.array([p["labels"][0] for p in answer["predictions"]])
            right = said == truth
            per_seed.append({"seed": seed, "run_id": run["run_id"],
                             "digits_test_accuracy": run["test_accuracy"],
                             "drawings_accuracy": float(right.mean()),
                             "train_seconds": round(train_seconds, 1),
                             "right": right.tolist(), "said": said.tolist()})
            print(f"{preset} seed {seed}: drawings {right.mean():.1%}, digits test "
                  f"{run['test_accuracy']:.1%}", file=sys.stderr)
        right = np.array([s["right"] for s in per_seed])  # seeds x drawings
        pens = np.array([r["pen"] for r in records])
        results[preset] = {
            "drawings_accuracy_mean": float(right.mean()),
            "drawings_accuracy_per_seed": [s["drawings_accuracy"] for s in per_seed],
            "digits_test_accuracy_mean": statistics.fmean(
                s["digits_test_accuracy"] for s in per_seed),
            "per_digit": {d: float(right[:, truth == d].mean()) for d in pen_strokes.DIGITS},
            "per_pen_width": {int(w): float(right[:, pens == w].mean())
                              for w in sorted(set(pens.tolist()))},
            "runs": [{k: v for k, v in s.items() if k not in ("right", "said")}
                     for s in per_seed],
            "answers_first_seed": per_seed[0]["said"],
        }
    return results


def own_dataset(records: list[dict], train_people: int, seeds: int, work: Path) -> dict:
    """A small dataset of one's own: the first `train_people` people's drawings, added as a
    dataset (the CLI's `datasets add`, as the Data page does), a network trained on it with
    each preset, tested on the other people's drawings."""
    folder = work / "own-digits"
    for r in records:
        if r["person"] < train_people:
            target = folder / r["digit"] / f"person{r['person']:02d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / r["path"], target)
    data = ["--data-dir", str(work / "own-data")]
    added = cli("datasets", "add", "own_digits", str(folder), "--test-split", "0.1", *data,
                runs_dir=work / "runs")
    others = [r for r in records if r["person"] >= train_people]
    truth = np.array([r["digit"] for r in others])
    found = {"train_people": train_people, "images": sum(added["kept"].values()),
             "image_shape": added["image_shape"], "tested_on_drawings": len(others)}
    for preset in PRESETS:
        scores = []
        for seed in range(seeds):
            run = cli("train", "--dataset", "own_digits", "--preset", preset, "--seed",
                      str(seed), *data, runs_dir=work / "runs")
            answer = cli("predict", run["run_id"], *[str(REPO / r["path"]) for r in others],
                         "--top-k", "1", *data, runs_dir=work / "runs")
            said = np.array([p["labels"][0] for p in answer["predictions"]])
            scores.append(float((said == truth).mean()))
            print(f"own digits, {preset} seed {seed}: {scores[-1]:.1%}", file=sys.stderr)
        found[preset] = {"accuracy_mean": statistics.fmean(scores), "per_seed": scores}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=16, help="people drawing 0-9 once each")
    parser.add_argument("--people-seed", type=int, default=2026,
                        help="who they are (seed 1 was used while tuning the preset)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds per preset")
    parser.add_argument("--own-train-people", type=int, default=10,
                        help="people whose drawings make the small own dataset")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "drawings.json")
    parser.add_argument("--reuse", action="store_true",
                        help="classify the drawings of the last run again, without drawing")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-drawings-"))
    os.environ["CNN_DATA_DIR"] = str(work / "data")
    folks = pen_strokes.people(args.people, seed=args.people_seed)

    if args.reuse:
        previous = json.loads(args.out.read_text())
        records, drawing_seconds = previous["records"], previous["drawing_minutes"] * 60
        folks = [pen_strokes.Person(**p) for p in previous["people"]]
    else:
        started = time.monotonic()
        with live_app.serve(work / "app") as app, sync_playwright() as playwright:
            browser = live_app.launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            records = draw_digits(app, page, folks,
                                  work / "data" / "drafts" / "local" / DRAFT)
            browser.close()
        drawing_seconds = time.monotonic() - started
        shown = args.out.parent / "drawings"
        shutil.rmtree(shown, ignore_errors=True)
        for record in records:
            target = shown / record["digit"] / f"person{record['person']:02d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(record["path"], target)
            record["path"] = str(target.relative_to(REPO))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({  # kept at once: --reuse needs no redrawing
            "people": [vars(p) for p in folks], "records": records,
            "drawing_minutes": round(drawing_seconds / 60, 1)}, indent=1))
    results = evaluate([{**r, "path": str(REPO / r["path"])} for r in records], args.seeds,
                       work / "runs")
    own = own_dataset(records, args.own_train_people, args.seeds, work)

    summary = {
        "what": "digits drawn with the mouse on the app's real canvas (headless Chromium) by "
                f"{args.people} made-up people (tests/pen_strokes.py), classified by digits "
                "networks trained with each preset",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "drawings": len(records),
        "redrawn": sum(r["attempts"] > 1 for r in records),
        "drawing_minutes": round(drawing_seconds / 60, 1),
        "people": [vars(p) for p in folks],
        "presets": results,
        "own_dataset": own,
        "records": records,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1))
    for preset in PRESETS:
        r = results[preset]
        print(f"{preset:<9} drawings {r['drawings_accuracy_mean']:.1%} "
              f"(seeds: {', '.join(f'{a:.1%}' for a in r['drawings_accuracy_per_seed'])}); "
              f"digits test {r['digits_test_accuracy_mean']:.1%}; own drawn dataset "
              f"({own['images']} drawings by {own['train_people']} people) "
              f"{own[preset]['accuracy_mean']:.1%} on {own['tested_on_drawings']} others'")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
