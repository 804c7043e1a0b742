"""`python -m cnn classroom`: serve the app to a class on the local network.

Prints two links — the teacher's, carrying a secret token (as Jupyter does), and the
students' — and a QR code of the students' link for the projector, then runs the
Streamlit server until Ctrl+C. The one-person command in the README stays localhost-only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cnn import classroom, runs
from cnn.errors import CnnError

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def add_parser(sub, common) -> None:
    p = sub.add_parser("classroom", parents=[common],
                       help="serve the app to a class on the local network")
    p.add_argument("--port", type=int, default=8501, help="the port (default 8501)")
    p.add_argument("--runs-per-student", type=int, default=classroom.Caps.active_runs,
                   help="runs a student may have waiting or training at once")
    p.add_argument("--max-epochs", type=int, default=classroom.Caps.max_epochs,
                   help="the most epochs a student may ask for")
    p.add_argument("--max-parameters", type=int, default=classroom.Caps.max_parameters,
                   help="the most parameters a student's network may have")
    p.add_argument("--watch-only", action="store_true",
                   help="students watch; only the teacher starts runs")
    p.add_argument("--print-only", action="store_true",
                   help="make the classroom and print its links, but do not serve")
    p.set_defaults(handler=cmd_classroom)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def cmd_classroom(args) -> int:
    if not 1 <= args.port <= 65535:
        raise CnnError(f"--port must be between 1 and 65535, not {args.port}.")
    if not args.print_only and not _port_free(args.port):
        raise CnnError(f"Port {args.port} is already in use (another app?): choose another "
                       "with --port.")
    caps = classroom.Caps(active_runs=max(1, args.runs_per_student),
                          max_epochs=args.max_epochs, max_parameters=args.max_parameters,
                          watch_only=args.watch_only)
    root = runs.runs_dir(args.runs_dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    _, token = classroom.create(root, caps)
    teacher, students = classroom.links(classroom.lan_address(), args.port, token)
    print(f"\nCNN Playground classroom\n\n  Teacher (keep it to yourself): {teacher}\n"
          f"  Students:                      {students}\n\n"
          "Students can scan this code (also shown to the teacher on the Train page):\n")
    print(classroom.qr_text(students))
    print("Stop the class with Ctrl+C. Runs stay in", root, flush=True)
    if args.print_only:
        return 0
    env = {**os.environ, classroom.CLASSROOM_ENV: "1", "CNN_RUNS_DIR": str(root)}
    command = [sys.executable, "-m", "streamlit", "run", str(APP),
               "--server.address", "0.0.0.0", "--server.port", str(args.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    try:
        return subprocess.call(command, env=env, cwd=APP.parent)
    except KeyboardInterrupt:
        return 0
