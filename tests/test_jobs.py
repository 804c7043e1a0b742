"""The job layer under stress: requests from two browsers at once, writes within one
timestamp tick, a status file damaged mid-run, stops where Keras cannot hear them, and a
machine without fcntl (as on Windows)."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import support
from cnn import jobs, runs
from cnn.callbacks import RunController
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent


def _tiny(**changes):
    return preset("fast", dataset="digits", **{"epochs": 1, "train_size": 200,
                                               "precision": "float32", **changes})


def test_requests_from_two_processes_at_once_all_land(tmp_path):
    run = runs.create_run(_tiny(), tmp_path / "r", start=False)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from cnn.jobs import Job
        from pathlib import Path
        job = Job(Path({str(run.path)!r}))
        for i in range(25):
            job.request(**{{sys.argv[1] + str(i): i}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, key]) for key in ("stop", "lr")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    control = run.control()
    assert control["seq"] == 50
    assert all(f"stop{i}" in control and f"lr{i}" in control for i in range(25))


def test_a_second_write_in_the_same_timestamp_tick_is_seen(tmp_path):
    # FAT keeps 2 s, exFAT 10 ms: two requests can share a modification time.
    import keras

    control = tmp_path / "control.json"
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.5), loss="mse")
    controller = RunController(control, peak_learning_rate=0.01, total_steps=100)
    controller.set_model(model)
    control.write_text(json.dumps({"learning_rate": 0.002}))
    os.utime(control, ns=(10**18, 10**18))
    controller.on_train_begin()
    controller.on_train_batch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.002)
    control.write_text(json.dumps({"learning_rate": 0.002, "stop": True}))
    os.utime(control, ns=(10**18, 10**18))  # the same tick as before
    controller.on_train_batch_end(0)
    assert controller.stop_requested and model.stop_training


def test_a_status_file_damaged_mid_run_keeps_the_run_stoppable(tmp_path):
    run = runs.create_run(_tiny(epochs=300, train_size=None), tmp_path / "r")
    support.wait_for_batches(run, 2)
    run.status_path.write_bytes(os.urandom(200))
    status = run.status()
    assert status["state"] == runs.RUNNING and "damaged" in status["message"]
    run.request_stop()  # accepted: the run is alive
    final = support.wait_for(run, runs.FINAL_STATES)
    assert final["state"] == runs.STOPPED, final
    assert "problem" not in run.raw_status()  # rewritten whole by its worker


def test_a_stop_while_the_worker_starts_up_ends_it_at_once(tmp_path):
    run = runs.create_run(_tiny(epochs=300, train_size=None), tmp_path / "r")
    line = runs.queue(run.root)
    deadline = time.monotonic() + 60
    while run.id not in line.busy_slots():  # it holds the slot: now importing TensorFlow
        assert time.monotonic() < deadline and run.state() in runs.ACTIVE_STATES
        time.sleep(0.01)
    run.request_stop()
    final = support.wait_for(run, runs.FINAL_STATES, timeout=60)
    assert final["state"] == runs.STOPPED
    assert final["message"] == "Stopped before training started."
    assert not run.metrics()


def test_a_worker_that_hangs_after_a_stop_is_ended(tmp_path):
    run = runs.create_run(_tiny(), tmp_path / "r", start=False)
    support.set_status(run, state=runs.RUNNING, message="Training…")
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from cnn import runs, worker
        from cnn.jobs import StatusWriter
        from cnn.processes import ProcessId
        from cnn.store import atomic_write_json
        run = runs.Run(Path({str(run.path)!r}))
        atomic_write_json(run.worker_path, ProcessId.current().to_dict())
        worker.STUCK_AFTER_S = 1.0
        dog = worker.Watchdog(run, StatusWriter(run))
        dog.training_started = True
        dog.start()
        print("ready", flush=True)
        time.sleep(600)  # training hangs: no batch, no heartbeat
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    run.request_stop()
    assert proc.wait(timeout=60) == 0
    status = run.status()
    assert status["state"] == runs.STOPPED and "stopped answering" in status["message"]


@pytest.mark.slow
def test_everything_works_without_fcntl(tmp_path):
    """As on Windows: no fcntl module at all, in the CLI and in the workers it starts."""
    blocker = tmp_path / "nofcntl"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['fcntl'] = None\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)]),
           "CNN_RUNS_DIR": str(tmp_path / "runs")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "cnn", *args], capture_output=True,
                              text=True, env=env, timeout=300, cwd=REPO)

    probe = subprocess.run([sys.executable, "-c", "import fcntl"], env=env,
                           capture_output=True, text=True)
    assert probe.returncode != 0  # really gone
    proc = cli("train", "--dataset", "digits", "--preset", "fast", "--epochs", "2",
               "--precision", "float32", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["status"] == "finished"
    # A second run, killed mid-training, is seen as interrupted; the queue recovers.
    started = cli("train", "--dataset", "digits", "--epochs", "300", "--detach", "--json")
    run = runs.get_run(json.loads(started.stdout.splitlines()[-1])["run_id"],
                       tmp_path / "runs")
    support.wait_for_batches(run, 1)
    run.worker().kill()
    assert support.wait_for(run, [runs.INTERRUPTED])["state"] == runs.INTERRUPTED
    again = cli("train", "--dataset", "digits", "--preset", "fast", "--epochs", "1",
                "--precision", "float32", "--json")
    assert json.loads(again.stdout.splitlines()[-1])["status"] == "finished", again.stderr
    assert isinstance(jobs.parallel_slots(), int)
