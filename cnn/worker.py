"""The process that does one job: `python -m cnn.worker KIND JOB_DIR`.

Started by `cnn.jobs.executor`. KIND is `train` (a run: wait for a training slot without
importing TensorFlow, then train), `install` (download a dataset) or `spare` (a warm
worker: load TensorFlow and the likely dataset now, take the next run later; JOB_DIR is
then the runs folder, see cnn.warm_workers). A watchdog thread
makes Stop work even where Keras cannot hear it: while the data is still loading, or when
the training process hangs.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil

from cnn import jobs, runs
from cnn.processes import ProcessId
from cnn.jobs import ACTIVE_STATES, STOPPED, Job, StatusWriter

# A stop request not acknowledged by training within this long (no batch, no epoch, no
# progress of the final test) means the process is stuck: the watchdog ends it.
STUCK_AFTER_S = 60.0


def _lower_priority(steps: int = 5) -> None:
    """Training takes every core; a lower priority keeps the web server (and a teacher's
    clicks) responsive on a small laptop while costing training almost nothing."""
    try:
        process = psutil.Process()
        if sys.platform == "win32":
            process.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS if steps <= 5
                         else psutil.IDLE_PRIORITY_CLASS)
        else:
            process.nice(min(19, max(process.nice(), steps)))
    except (psutil.Error, OSError):
        pass


class Watchdog(threading.Thread):
    """Ends the process when a stop request cannot be honoured by training itself.

    Before training starts (loading data, building the model) a stop ends the run at once:
    nothing has been learnt yet. Afterwards, training stops within a batch group; only if
    nothing at all happens for STUCK_AFTER_S after the request is the process ended.
    """

    def __init__(self, run: runs.Run, status: StatusWriter):
        super().__init__(daemon=True, name="watchdog")
        self.job, self.status = run, status
        self.training_started = False
        self.heartbeat = time.monotonic()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def run(self) -> None:  # threading.Thread's method
        while True:
            time.sleep(0.25)
            if not self.job.control().get("stop"):
                continue
            if not self.training_started:
                self._end("Stopped before training started.")
            if time.monotonic() - self.heartbeat > STUCK_AFTER_S:
                self._end("Stopped: the training process stopped answering, so it was "
                          "ended; the model of the last finished epoch is kept.")

    def _end(self, message: str) -> None:
        try:
            self.status.update(state=STOPPED, message=message, finished=time.time())
        finally:
            self.job.model_path.with_name(".model.tmp.keras").unlink(missing_ok=True)
            os._exit(0)


def train(run: runs.Run) -> None:
    status = StatusWriter(run)
    queue = runs.queue(run.root)
    slot = jobs.wait_for_slot(run, queue, lambda: bool(run.control().get("stop")))
    if slot is None:
        status.update(state=STOPPED, message="Stopped before it started.",
                      finished=time.time())
        return
    try:
        _lower_priority(5)
        watchdog = Watchdog(run, status)
        watchdog.start()
        from cnn import training  # imports TensorFlow: only once it is our turn

        watchdog.beat()
        training.execute(run, status=status, on_training_start=lambda: setattr(
            watchdog, "training_started", True), heartbeat=watchdog.beat)
    finally:
        queue.release(slot)


def main(argv: list[str]) -> int:
    kind, path = argv[0], Path(argv[1])
    if kind == "train":
        run = runs.Run(path)
        if run.raw_status().get("state") in ACTIVE_STATES:
            train(run)
    elif kind == "spare":
        from cnn import warm_workers

        _lower_priority(10)  # warming up beside a run that trains: never slow it down
        warm_workers.serve(path, ProcessId(int(argv[2]), float(argv[3])))
    elif kind == "install":
        from cnn import install_jobs

        install_jobs.work(Job(path))
    else:
        print(f"unknown job kind {kind!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
