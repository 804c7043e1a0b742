"""Classroom mode: roles and caps (core and pages), lesson links, pages that follow runs
started elsewhere, and the warm worker that makes Start answer at once."""

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import support
from cnn import classroom, lesson_links, runs, warm_workers
from cnn.config import ConvBlock
from cnn.errors import ConfigError, RunError
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent


# --- lesson links ---------------------------------------------------------------------------
def test_a_lesson_link_holds_only_what_differs_from_the_preset_and_reads_back():
    params = preset("fast", dataset="digits", epochs=7, learning_rate=0.005,
                    conv_blocks=[ConvBlock(8, 5, True), ConvBlock(16, 3, False)],
                    dense_units=[], augment_flip=True).replace(train_size=None)
    query = lesson_links.to_query(params, "fast")
    assert query == {"dataset": "digits", "preset": "fast", "epochs": "7",
                     "learning_rate": "0.005", "conv_blocks": "8x5p-16x3",
                     "dense_units": "none", "train_size": "all", "augment_flip": "on"}
    name, back, problems = lesson_links.from_query(query, "cifar10")
    assert (name, back, problems) == ("fast", params, [])


def test_a_bad_link_names_each_problem_and_keeps_the_preset_values():
    name, params, problems = lesson_links.from_query(
        {"preset": "fast", "epochs": "banana", "learning_rate": "-3", "colour": "red",
         "conv_blocks": "big", "batch_size": "64"}, "digits")
    assert name == "fast" and params.batch_size == 64  # the good value is taken
    fast = preset("fast", dataset="digits")
    assert (params.epochs, params.learning_rate, params.conv_blocks) == (
        fast.epochs, fast.learning_rate, fast.conv_blocks)
    assert len(problems) == 4
    assert any("Epochs must be a number, not “banana”" in p for p in problems)
    assert any("“colour” is not a setting" in p for p in problems)
    assert lesson_links.from_query({"preset": "secret"}, "digits")[2] == [
        "There is no preset “secret”; the tutorial preset is used."]


# --- roles and caps ---------------------------------------------------------------------------
def test_the_teacher_token_students_and_who_may_change_a_run(tmp_path):
    settings, token = classroom.create(tmp_path)
    assert classroom.is_teacher_token(classroom.load(tmp_path), token)
    assert not classroom.is_teacher_token(settings, token + "x")
    assert token not in (tmp_path / ".classroom" / "settings.json").read_text()
    alex, key = classroom.register(tmp_path, "  Alex  ")
    twin, _ = classroom.register(tmp_path, "Alex")
    assert (alex.name, twin.name) == ("Alex", "Alex (2)")
    assert classroom.student(tmp_path, key) == alex
    assert classroom.student(tmp_path, "not-a-key-at-all") is None
    with pytest.raises(ConfigError, match="taken"):
        classroom.register(tmp_path, "Teacher")
    teacher = classroom.Person(classroom.TEACHER, "Teacher", classroom.TEACHER)
    alex_run = classroom.owner_fields(alex)
    assert classroom.may_control(alex, alex_run) and classroom.may_control(teacher, alex_run)
    assert not classroom.may_control(twin, alex_run)
    assert not classroom.may_control(alex, classroom.owner_fields(teacher))
    with pytest.raises(RunError, match="Only Alex or the teacher can change this run"):
        classroom.check_control(twin, alex_run)


@pytest.mark.parametrize("caps, epochs, parameters, active, words", [
    (classroom.Caps(watch_only=True), 1, 100, 0, "watch only"),
    (classroom.Caps(active_runs=1), 1, 100, 1, "at most 1 at once"),
    (classroom.Caps(max_epochs=5), 6, 100, 0, "At most 5 epochs"),
    (classroom.Caps(max_parameters=1000), 1, 5000, 0, "At most 1,000 parameters"),
])
def test_the_teachers_caps_are_explained(caps, epochs, parameters, active, words):
    student = classroom.Person(classroom.STUDENT, "Sam", "abc")
    with pytest.raises(ConfigError, match=words):
        classroom.check_start(student, caps, epochs, parameters, active)
    teacher = classroom.Person(classroom.TEACHER, "Teacher", classroom.TEACHER)
    classroom.check_start(teacher, caps, epochs, parameters, active)  # no limits


# --- the pages in a classroom ------------------------------------------------------------
@pytest.fixture
def class_room(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))  # digits only
    monkeypatch.setenv(classroom.CLASSROOM_ENV, "1")
    root = runs.runs_dir()
    _, token = classroom.create(root, classroom.Caps(max_epochs=50))
    student, key = classroom.register(root, "Sam")
    return token, student, key


def open_train(**query) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page("app_pages/train.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _running_run(owner: classroom.Person):
    run = runs.create_run(preset("fast", dataset="digits", epochs=1), start=False,
                          extra_status=classroom.owner_fields(owner))
    support.set_status(run, state=runs.RUNNING, message="Training…")
    return run


def test_a_student_cannot_stop_the_teachers_run_but_watches_it(class_room):
    token, student, key = class_room
    teacher = classroom.Person(classroom.TEACHER, "Teacher", classroom.TEACHER)
    run = _running_run(teacher)
    with support.playing_worker(run):
        at = open_train(me=key)
        assert at.selectbox(key="train_run").value == run.id  # follows the live run
        assert not [b for b in at.button if b.key == "train_stop"]
        assert any("Only Teacher or the teacher can stop or change this run" in c.value
                   for c in at.caption)
        # Even a forged click is refused by the core's check.
        with pytest.raises(RunError):
            classroom.check_control(student, run.status())


def test_the_teacher_can_stop_a_students_run(class_room):
    token, student, _ = class_room
    run = _running_run(student)
    with support.playing_worker(run):
        at = open_train(token=token)
        at.button(key="train_stop").click().run()
        assert not at.exception and not at.error
        assert run.control().get("stop") is True


def test_a_student_joins_once_then_starts_within_the_caps(class_room):
    token, _, _ = class_room
    at = open_train()
    assert not [b for b in at.button if b.key == "train_start"]  # a guest: join first
    at.text_input(key="join_name").input("Robin")
    [join] = [b for b in at.button if b.label == "Join"]  # the join form's submit button
    join.click().run()
    assert not at.exception
    key = at.query_params["me"][0] if isinstance(at.query_params["me"], list) \
        else at.query_params["me"]
    robin = classroom.student(runs.runs_dir(), key)
    assert robin.name == "Robin"
    at.number_input(key="train_epochs").set_value(60).run()
    at.button(key="train_start").click().run()
    assert any("At most 50 epochs in this class" in e.value for e in at.error)
    assert runs.list_runs() == []


# --- following runs started elsewhere --------------------------------------------------------
def test_an_open_train_page_notices_a_run_started_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    older = runs.create_run(preset("fast", dataset="digits", epochs=1), start=False)
    support.set_status(older, state=runs.FINISHED, message="Finished.")
    at = support.open_page("app_pages/train.py")
    assert at.selectbox(key="train_run").value == older.id
    newer = runs.create_run(preset("fast", dataset="digits", epochs=1), start=False)
    support.set_status(newer, state=runs.RUNNING, message="Training…")
    with support.playing_worker(newer):
        seen = runs.fingerprint()
        assert seen != at.session_state["runs_seen"]  # what the page's watcher compares
        at.run()  # the watcher reruns the page: it now shows the run that trains
        assert at.selectbox(key="train_run").value == newer.id
        # Progress written while it trains is not a change to redraw the page for (its
        # live view shows it); a state change is.
        seen = runs.fingerprint()
        support.set_status(newer, state=runs.RUNNING, message="Epoch 2…", epochs_completed=1)
        assert runs.fingerprint() == seen
        support.set_status(newer, state=runs.PAUSED, message="Paused")
        assert runs.fingerprint() != seen


def test_the_train_form_lives_in_the_link(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    at = open_train(dataset="digits", preset="fast", epochs="7", learning_rate="0.002")
    assert at.segmented_control(key="train_preset").value == "fast"
    assert at.number_input(key="train_epochs").value == 7
    assert at.select_slider(key="train_learning_rate").value == 0.002
    at.selectbox(key="train_batch_size").set_value(32).run()
    query = {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}
    assert query["batch_size"] == "32" and query["epochs"] == "7"
    # A bad link: one readable message per problem, the form on the defaults.
    at = open_train(preset="nope", epochs="many")
    messages = [e.value for e in at.error]
    assert any("no preset “nope”" in m for m in messages)
    assert any("Epochs must be a number, not “many”" in m for m in messages)
    assert at.segmented_control(key="train_preset").value == "tutorial"


# --- the warm worker --------------------------------------------------------------------------
@pytest.mark.slow
def test_a_warm_worker_takes_the_next_run(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_WARM_WORKER", "1")
    root = runs.runs_dir()
    root.mkdir(parents=True)
    try:
        warm_workers.ensure(root)
        deadline = time.monotonic() + 120
        while not list((root / ".spares").glob("*.ready")):
            assert time.monotonic() < deadline, (root / ".spares" / "spare.log").read_text()
            time.sleep(0.1)
        [ready] = list((root / ".spares").glob("*.ready"))
        run = runs.create_run(preset("fast", dataset="digits", epochs=1, precision="float32"))
        assert run.worker().pid == int(ready.stem)  # handed to the warm process
        assert support.wait_for(run, runs.FINAL_STATES)["state"] == runs.FINISHED
    finally:
        warm_workers.stop_all(root)
