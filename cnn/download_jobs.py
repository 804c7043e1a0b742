"""Dataset downloads in a background process, their progress on disk.

The Data page starts one and polls `status`; the download itself is `cnn.datasets.download`
(temp file + checksum + rename), so a download that is cancelled or killed leaves no file.
Run as `python -m cnn.download_jobs NAME STATUS_PATH LOCK_FD` by `start`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from cnn import datasets
from cnn.errors import CnnError
from cnn.processes import lock_held, spawn_detached, take_lock
from cnn.runs import atomic_write_json, read_json, runs_dir

DOWNLOADING, DONE, FAILED, CANCELLED = "downloading", "done", "failed", "cancelled"


class Cancelled(Exception):
    pass


def _paths(name: str, root: str | Path | None = None) -> tuple[Path, Path, Path]:
    folder = runs_dir(root) / ".downloads"
    return folder / f"{name}.json", folder / f"{name}.lock", folder / f"{name}.cancel"


def status(name: str, root: str | Path | None = None) -> dict[str, Any] | None:
    """{"state", "done", "total", "message"} of the latest download of `name`, or None."""
    status_path, lock_path, _ = _paths(name, root)
    current = read_json(status_path)
    if current and current.get("state") == DOWNLOADING and not lock_held(lock_path):
        current = {**current, "state": FAILED,
                   "message": "The download stopped unexpectedly; no partial file was kept."}
        atomic_write_json(status_path, current)
    return current


def start(name: str, root: str | Path | None = None) -> None:
    """Start downloading `name` in the background, unless it is already downloading."""
    datasets.get_info(name)  # unknown names fail here, readably
    status_path, lock_path, cancel_path = _paths(name, root)
    status_path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = take_lock(lock_path)
    if lock_fd is None:
        return  # a download of it is under way
    try:
        cancel_path.unlink(missing_ok=True)
        atomic_write_json(status_path, {"state": DOWNLOADING, "done": 0, "total": None,
                                        "message": "Starting…", "started": time.time()})
        spawn_detached("cnn.download_jobs", [name, str(status_path)], lock_fd,
                       status_path.with_suffix(".log"))
    finally:
        os.close(lock_fd)  # the child holds its own copy of the locked descriptor


def cancel(name: str, root: str | Path | None = None) -> None:
    """Ask a background download to stop; it removes its partial file."""
    _, _, cancel_path = _paths(name, root)
    cancel_path.parent.mkdir(parents=True, exist_ok=True)
    cancel_path.touch()


def main(argv: list[str]) -> int:
    name, status_path = argv[0], Path(argv[1])
    cancel_path = status_path.with_suffix(".cancel")
    last_write = 0.0

    def progress(done: int, total: int | None) -> None:
        nonlocal last_write
        if cancel_path.exists():
            raise Cancelled
        now = time.monotonic()
        if now - last_write >= 0.2:
            last_write = now
            atomic_write_json(status_path, {"state": DOWNLOADING, "done": done, "total": total,
                                            "message": "Downloading…"})

    try:
        path = datasets.download(name, progress=progress)
    except Cancelled:
        atomic_write_json(status_path, {"state": CANCELLED, "message": "Download cancelled."})
    except CnnError as error:
        atomic_write_json(status_path, {"state": FAILED, "message": str(error)})
    except Exception as error:  # a bug: one line for the UI, the traceback in the log
        import traceback

        traceback.print_exc()
        atomic_write_json(status_path, {"state": FAILED,
                                        "message": f"Download failed: {error}"})
    else:
        atomic_write_json(status_path, {"state": DONE, "message": f"Saved in {path}."})
    finally:
        cancel_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
