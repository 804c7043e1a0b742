"""The process that executes one run: `python -m cnn.worker RUN_DIR LOCK_FD`.

Spawned by `cnn.runs.create_run`, which hands over the run's locked liveness file as
LOCK_FD. Waits (without importing TensorFlow) for its turn, then trains.
"""

import os
import sys
import time
from pathlib import Path

from cnn.runs import STOPPED, Run, wait_for_slot


def main(argv: list[str]) -> int:
    run = Run(Path(argv[0]))
    lock_fd = int(argv[1])  # inherited and held until this process exits
    run.update_status(pid=os.getpid())
    slot_fd = wait_for_slot(run)
    if slot_fd is None:
        run.update_status(state=STOPPED, message="Stopped before it started.",
                          finished=time.time())
        return 0
    # Training takes every core; a lower priority keeps the web server (and a teacher's
    # clicks) responsive on a small laptop while costing training almost nothing.
    if hasattr(os, "nice"):
        os.nice(5)
    from cnn.training import execute  # imports TensorFlow: only once it is our turn

    execute(run)
    del lock_fd, slot_fd  # released by the OS when the process exits
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
