"""A full disk and a read-only runs folder, for real: small tmpfs mounts (root only).

One clear sentence ("The disk is full: …", "… cannot be written to"), a final status, and
nothing half-written that breaks the next start. Skipped where mounting is not allowed
(not root), except in CI, which sets CNN_REQUIRE_MOUNT.
"""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import support
from cnn import runs, training
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def mounted(path: Path, size: str, read_only: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        reason = f"cannot mount a small disk here ({proc.stderr.strip() or 'not root'})"
        if os.environ.get("CNN_REQUIRE_MOUNT"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def cli(*args, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "cnn", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=REPO)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(
        (".new", ".part")))


def test_a_disk_that_fills_up_mid_run_fails_the_run_in_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    # Room for the run's small files, not for the tutorial network's checkpoint (~1.5 MB).
    with mounted(tmp_path / "disk", "400k") as disk:
        run = runs.create_run(preset("tutorial", dataset="digits", epochs=2, train_size=300,
                                     precision="float32"), disk / "runs", start=False)
        status = training.execute(run)
        assert status["state"] == runs.FAILED, status
        assert status["message"].startswith("The disk is full: could not save model.keras")
        assert run.status()["state"] == runs.FAILED  # written, and final
        assert leftovers(disk) == []  # no temp model, no half-written status
        assert not run.has_model()
        # Everything still works afterwards.
        monkeypatch.setenv("CNN_RUNS_DIR", str(disk / "runs"))
        listed = cli("runs", "--json")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout.splitlines()[-1])["runs"][0]["status"] == "failed"
        evaluated = cli("evaluate", run.id)
        assert evaluated.returncode == 2 and "no saved model" in evaluated.stderr
        for page in ("app_pages/home.py", "app_pages/train.py"):
            at = support.open_page(page)
            assert not at.exception
        at = support.open_page("app_pages/train.py")
        assert any("The disk is full" in e.value for e in at.error)


def test_a_full_disk_refuses_a_new_run_readably(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    with mounted(tmp_path / "disk", "64k") as disk:
        (disk / "filler").write_bytes(b"\0" * (64 * 1024 - 4096))
        with contextlib.suppress(OSError):  # fill the last blocks
            (disk / "filler2").write_bytes(b"\0" * 8192)
        proc = cli("train", "--dataset", "digits", "--runs-dir", str(disk / "runs"))
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: The disk is full") and \
            proc.stderr.count("\n") == 1, proc.stderr
        assert leftovers(disk) == [] and not list((disk / "runs").glob(".*.new"))


def test_a_read_only_runs_folder_is_explained_everywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    with mounted(tmp_path / "ro", "64k", read_only=True) as folder:
        monkeypatch.setenv("CNN_RUNS_DIR", str(folder))
        listed = cli("runs")
        assert listed.returncode == 0 and "no runs yet" in listed.stdout
        proc = cli("train", "--dataset", "digits", "--epochs", "1")
        assert proc.returncode == 2 and "cannot be written to" in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1
        for page in ("app_pages/home.py", "app_pages/evaluate.py"):
            assert not support.open_page(page).exception
        at = support.open_page("app_pages/train.py")
        at.button(key="train_start").click().run()
        assert not at.exception
        assert any("cannot be written to" in e.value for e in at.error)
