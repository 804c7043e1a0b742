"""Worker processes: started detached, and recognised later by pid and start time.

The same code on Linux, macOS and Windows: `subprocess` flags that exist everywhere, and
psutil to ask whether a process is still the one we started (a pid is reused after a
process ends, its start time is not), so a worker killed with -9, a reboot or a crashed
server is seen as gone by every other process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil

# Two readings of one process's start time can differ by rounding (psutil derives it from
# clock ticks since boot); a reused pid starts later than this by far.
_START_TIME_TOLERANCE_S = 1.0


@dataclass(frozen=True)
class ProcessId:
    """A process as it can be found again: its pid and when it started."""

    pid: int
    started: float  # psutil's create_time(), seconds since the epoch

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        """The running process `pid`, or None if there is none."""
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except (psutil.Error, ValueError, OverflowError):
            return None

    @classmethod
    def current(cls) -> ProcessId:
        process = psutil.Process()
        return cls(process.pid, process.create_time())

    def is_running(self) -> bool:
        """Whether this very process (not another one given the same pid) is alive."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > _START_TIME_TOLERANCE_S:
                return False
            return process.status() != psutil.STATUS_ZOMBIE
        except (psutil.Error, ValueError, OverflowError):
            return False

    def kill(self, grace_s: float = 3.0) -> None:
        """End it: terminate, then kill after `grace_s` (only if it is still this process)."""
        if not self.is_running():
            return
        try:
            process = psutil.Process(self.pid)
            process.terminate()
            try:
                process.wait(grace_s)
            except psutil.TimeoutExpired:
                process.kill()
                process.wait(grace_s)
        except psutil.Error:
            pass

    def to_dict(self) -> dict:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_dict(cls, data) -> ProcessId | None:
        """From a stored record; None when the record is missing or malformed."""
        if not isinstance(data, dict):
            return None
        pid, started = data.get("pid"), data.get("started")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        if isinstance(started, bool) or not isinstance(started, (int, float)):
            return None
        return cls(pid, float(started))


def spawn_detached(module: str, args: list[str], log_path: Path,
                   env: dict[str, str] | None = None) -> ProcessId:
    """Start `python -m module *args` on its own: a Ctrl+C in the server's terminal or the
    server's exit does not end it. Its output is appended to `log_path`."""
    env = dict(os.environ if env is None else env)
    # Make `cnn` importable for the child wherever the caller's working directory is.
    package_parent = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    if sys.platform == "win32":
        detach = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP
                  | subprocess.DETACHED_PROCESS | subprocess.CREATE_NO_WINDOW}
    else:
        detach = {"start_new_session": True}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            close_fds=True, **detach,
        )
    # Reap it when it exits, so a long-lived server does not collect zombie processes.
    threading.Thread(target=process.wait, daemon=True, name=f"reap-{process.pid}").start()
    return ProcessId.of(process.pid) or ProcessId(process.pid, 0.0)


def peak_memory_bytes() -> int | None:
    """The most memory this process has held (peak resident set), or None where unknown.
    psutil reports the peak only on Windows (peak_wset); elsewhere getrusage does, in KiB
    on Linux and in bytes on macOS."""
    if sys.platform == "win32":
        return getattr(psutil.Process().memory_info(), "peak_wset", None)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024
