"""Damaged run folders: every page and the CLI keep working, the damaged run shows as
damaged (with what is wrong) and the healthy run beside it is unaffected.

The corpus below is what a careless hand, a crash or a full disk leaves in a run folder.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import support
from cnn import runs

REPO = Path(__file__).resolve().parent.parent
LEGACY = REPO / "tests" / "data" / "legacy-run"
HEALTHY = "20261125-185151-digits-8513"  # the fixture's own id (its accuracy: 60.8 %)


def _rewrite_json(name, change):
    def damage(folder: Path):
        path = folder / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))
    return damage


def _write(name, data: bytes):
    def damage(folder: Path):
        (folder / name).write_bytes(data)
    return damage


def _remove(name):
    def damage(folder: Path):
        (folder / name).unlink()
    return damage


# name -> (damage, does the run still show its results?)
CORPUS = {
    "status-created-text": _rewrite_json("status.json", lambda s: {**s, "created": "yesterday"}),
    "status-accuracy-text": _rewrite_json("status.json",
                                          lambda s: {**s, "test_accuracy": "high"}),
    "status-state-unknown": _rewrite_json("status.json", lambda s: {**s, "state": "flying"}),
    "status-message-list": _rewrite_json("status.json", lambda s: {**s, "message": [1]}),
    "status-random-bytes": _write("status.json", os.urandom(300)),
    "status-empty": _write("status.json", b""),
    "status-a-list": _write("status.json", b"[1, 2, 3]"),
    "status-deep-nesting": _write("status.json", b"[" * 100_000),
    "status-missing": _remove("status.json"),
    "config-a-list": _write("config.json", b"[1, 2]"),
    "config-blocks-numbers": _rewrite_json("config.json",
                                           lambda c: {**c, "conv_blocks": [1, 2]}),
    "config-dense-number": _rewrite_json("config.json", lambda c: {**c, "dense_units": 5}),
    "config-unknown-dataset": _rewrite_json("config.json",
                                            lambda c: {**c, "dataset": "imagenet"}),
    "config-missing": _remove("config.json"),
    "evaluation-garbage": _write("evaluation.json", b'{"test_accuracy": "x"'),
    "evaluation-wrong-matrix": _rewrite_json("evaluation.json",
                                             lambda e: {**e, "confusion_matrix": [[1]]}),
    "evaluation-nan": _write("evaluation.json", b'{"test_accuracy": NaN}'),
    "predictions-garbage": _write("predictions.npz", b"PK\x03\x04 not a zip"),
    "metrics-garbage": _write("metrics.jsonl", b'{"kind": "batch", "step": "x"}\n\xff\xfe\n'
                                               b'{"kind": "epoch", "step": 1e999}\n[1]\n'),
    "model-garbage": _write("model.keras", b"PK\x03\x04 not a model"),
}


@pytest.fixture
def corpus(monkeypatch, tmp_path):
    """The healthy fixture run, and one damaged copy of it per corpus entry."""
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))  # digits only
    root = runs.runs_dir()
    root.mkdir(parents=True)
    shutil.copytree(LEGACY, root / HEALTHY)
    damaged = {}
    for i, (name, damage) in enumerate(CORPUS.items()):
        run_id = f"20261125-19{i:04d}-digits-{name}"
        shutil.copytree(LEGACY, root / run_id)
        damage(root / run_id)
        damaged[name] = runs.Run(root / run_id)
    return damaged


def test_every_reader_survives_the_corpus(corpus):
    for name, run in corpus.items():
        status = run.status()  # never raises
        assert status["state"] in runs.FINAL_STATES, (name, status)
        if name.startswith("status-") and name not in ("status-message-list",):
            assert status.get("problem"), (name, status)
        run.metrics()
        run.evaluation()
        if name.startswith("evaluation-"):
            assert run.evaluation() is None and run.evaluation_problem(), name
    assert [r.id for r in runs.list_runs()]  # sorting survives wrong "created" fields


def test_reading_never_writes(corpus):
    before = {p: p.read_bytes() for run in corpus.values() for p in run.path.iterdir()}
    for run in corpus.values():
        run.status()
        runs.list_runs()
    assert {p: p.read_bytes() for p in before} == before


def test_the_cli_lists_every_run_and_names_the_damage(corpus):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cnn", "runs", "--json"], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    rows = {r["run_id"]: r for r in json.loads(proc.stdout.splitlines()[-1])["runs"]}
    assert rows[HEALTHY]["test_accuracy"] == pytest.approx(0.6083, abs=1e-4)
    assert rows[HEALTHY]["problem"] is None
    for name in ("status-random-bytes", "config-a-list", "config-blocks-numbers"):
        row = rows[corpus[name].id]
        assert row["problem"], (name, row)
    assert rows[corpus["status-random-bytes"].id]["status"] == runs.DAMAGED


@pytest.mark.parametrize("page, key", [("app_pages/home.py", None),
                                       ("app_pages/train.py", "train_run"),
                                       ("app_pages/evaluate.py", "evaluate_run"),
                                       ("app_pages/classify.py", "classify_run")])
def test_every_page_shows_every_run_of_the_corpus(corpus, page, key):
    at = support.open_page(page)
    assert not at.exception, at.exception
    if key is None:  # Home: the latest healthy result
        return
    options = at.selectbox(key=key).options  # the labels shown (they name each run)
    for index, label in enumerate(options):
        at.selectbox(key=key).select_index(index).run()
        assert not at.exception, (label, at.exception)
    if page.endswith("evaluate.py"):
        # The healthy run is there with its accuracy; runs whose results are damaged are
        # listed apart, each with what is wrong.
        at.selectbox(key=key).set_value(HEALTHY).run()
        assert at.metric[0].value == "60.8%"
        listed = " ".join(m.value for m in at.markdown)
        for name in ("evaluation-garbage", "evaluation-wrong-matrix", "evaluation-nan"):
            assert not any(corpus[name].id in label for label in options)
            assert corpus[name].id in listed
