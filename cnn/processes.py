"""Detached worker processes and the flock-based liveness of their state files.

A spawner takes an exclusive lock on a file and hands the locked descriptor to the child
it spawns; the child holds it for its whole life, and the OS drops it when the child exits
in any way (kill -9 and reboots included). So "is the worker alive?" is a non-blocking
lock probe, immune to pid reuse.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: liveness probes are not supported
    fcntl = None


def lock_held(path: Path) -> bool:
    """Whether some process holds an exclusive flock on `path`."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def take_lock(path: Path, blocking: bool = False) -> int | None:
    """Open and exclusively lock `path`; the fd (keep it open to hold the lock) or None."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def spawn_detached(module: str, args: list[str], lock_fd: int, log_path: Path,
                   env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `python -m module *args lock_fd` holding `lock_fd`, in its own session (a
    Ctrl+C in the server's terminal does not kill it), output appended to `log_path`."""
    env = dict(os.environ if env is None else env)
    # Make `cnn` importable for the child wherever the caller's working directory is.
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args, str(lock_fd)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            pass_fds=(lock_fd,), env=env, start_new_session=True,
        )
    # Reap it when it exits, so a long-lived server does not collect zombie processes.
    threading.Thread(target=process.wait, daemon=True, name=f"reap-{process.pid}").start()
    return process
