"""A classroom in real browsers: one server in classroom mode, a teacher and a student in two
browser contexts. The student's Train page follows the teacher's run and cannot stop it;
the teacher's presenter link has large type and the live charts above the fold at
1280×720 (the screenshot goes to tmp_path, as the projector shows it).
"""

from __future__ import annotations

import re

import pytest

import live_app
from cnn import classroom, runs
from live_app import choose, set_number, title, wait_until_idle

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips or fails first
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROJECTOR = {"width": 1280, "height": 720}
RUN_TIMEOUT_MS = 180_000
# The computed font size of the page's body text, and the top of the first live chart.
SMALLEST_TEXT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  let smallest = Infinity;
  for (const el of main.querySelectorAll('p, span, label, li, button, h1, h2, h3, h4')) {
    const box = el.getBoundingClientRect();
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (text && box.width > 0 && box.height > 0 && box.top < innerHeight)
      smallest = Math.min(smallest, parseFloat(getComputedStyle(el).fontSize));
  }
  return smallest;
}"""
CHART_TOP_JS = """() => {
  const chart = document.querySelector('[data-testid="stVegaLiteChart"]');
  return chart ? chart.getBoundingClientRect().top : null;
}"""
AXIS_LABEL_JS = """() => Math.min(...[...document.querySelectorAll(
    '[data-testid="stVegaLiteChart"] .role-axis-label text')].map(
    t => parseFloat(t.getAttribute('font-size') || getComputedStyle(t).fontSize)))"""


@pytest.fixture(scope="module")
def lesson(browser, tmp_path_factory):
    """A classroom server: its teacher token and its address."""
    workdir = tmp_path_factory.mktemp("classroom")
    (workdir / "runs").mkdir()
    _, token = classroom.create(workdir / "runs", classroom.Caps(max_epochs=1000))
    with live_app.serve(workdir, extra_env={classroom.CLASSROOM_ENV: "1"}) as app:
        yield app, token


def new_tab(browser, viewport=PROJECTOR):
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    return context, tab


def join(page, name: str) -> None:
    """Type a name into the join form and submit it; the sidebar then names the student.
    (The page redraws as the run it shows moves on: wait for a quiet moment to type.)"""
    for attempt in range(3):
        wait_until_idle(page)
        page.get_by_label("Your name").fill(name)
        page.get_by_role("button", name="Join").click()
        try:
            expect(page.get_by_text(f"You: {name}")).to_be_visible(timeout=30_000)
            return
        except AssertionError:
            if attempt == 2:
                raise


def test_teacher_and_student(browser, lesson, tmp_path):
    app, token = lesson
    teacher_context, teacher = new_tab(browser)
    student_context, student = new_tab(browser)
    try:
        # The teacher sets up a long digits run and starts it.
        teacher.goto(f"{app.page_url('Train')}?token={token}")
        title(teacher, "Train").wait_for()
        wait_until_idle(teacher)
        teacher.get_by_role("radio", name="Fast").click()
        wait_until_idle(teacher)
        choose(teacher, "Dataset", "Digits (scikit-learn)")
        wait_until_idle(teacher)
        set_number(teacher, "Epochs", 500)
        expect(teacher.get_by_text("· 500 epochs")).to_be_visible()
        wait_until_idle(teacher)
        assert "epochs=500" in teacher.url and "preset=fast" in teacher.url  # a lesson link
        teacher.get_by_role("button", name="Start training").click()
        expect(teacher.get_by_test_id("stProgress")).to_contain_text(
            re.compile(r"Epoch \d+ of 500"), timeout=RUN_TIMEOUT_MS)
        [run] = runs.list_runs(app.runs_dir)
        assert run.status()["owner"] == "Teacher"

        # A student joins and watches the same live run, but cannot stop it.
        student.goto(app.page_url("Train"))
        title(student, "Train").wait_for()
        join(student, "Sam")
        try:
            expect(student.get_by_test_id("stProgress")).to_contain_text(
                re.compile(r"Epoch \d+ of 500"), timeout=RUN_TIMEOUT_MS)
        except AssertionError:
            student.screenshot(path="/tmp/student-fail.png", full_page=True)
            print("URL", student.url, [a.inner_text() for a in student.get_by_test_id(
                "stAlert").all()], run.status())
            raise
        expect(student.get_by_text("Only Teacher or the teacher can stop or change this "
                                   "run")).to_be_visible()
        expect(student.get_by_role("button", name="Stop training")).to_have_count(0)
        assert "me=" in student.url and "token" not in student.url

        # The presenter link: large type, the live curves above the fold.
        presenter_context, presenter = new_tab(browser)
        presenter.goto(f"{app.page_url('Train')}?token={token}&presenter=1")
        expect(presenter.get_by_test_id("stVegaLiteChart").first).to_be_visible(
            timeout=RUN_TIMEOUT_MS)
        # (Not "idle": a live run view redraws every second.) Both charts drawn:
        expect(presenter.locator('[data-testid="stVegaLiteChart"]')).to_have_count(2)
        for chart in presenter.locator('[data-testid="stVegaLiteChart"]').all():
            expect(chart.locator(".role-axis-label").first).to_be_visible()
        assert presenter.evaluate(SMALLEST_TEXT_JS) >= 20  # every text in view
        assert presenter.evaluate(AXIS_LABEL_JS) >= 20
        top = presenter.evaluate(CHART_TOP_JS)
        assert top is not None and top < PROJECTOR["height"] - 200, top
        presenter.screenshot(path=str(tmp_path / "presenter-1280x720.png"))
        presenter_context.close()

        # The teacher stops it; the student's page follows to the result.
        teacher.bring_to_front()
        try:
            teacher.get_by_role("button", name="Stop training").click()
        except Exception:
            teacher.screenshot(path="/tmp/teacher-fail.png", full_page=True)
            raise
        expect(student.get_by_text(re.compile(r"^Stopped after [\d.]+ epochs?"))
               ).to_be_visible(timeout=RUN_TIMEOUT_MS)
        assert run.status()["state"] == runs.STOPPED
    finally:
        teacher_context.close()
        student_context.close()
