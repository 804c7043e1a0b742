"""Shared fixtures: isolated runs/data folders, and the real Fashion-MNIST when present."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test gets its own runs folder and an empty Keras cache, so nothing on the
    developer's machine leaks in and nothing is ever downloaded into it."""
    monkeypatch.setenv("CNN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("CNN_OFFLINE", "1")  # tests never download
    monkeypatch.setenv("CNN_WARM_WORKER", "0")  # no spare processes (but in their tests)
    monkeypatch.setenv("CNN_READY_MODELS", "0")  # empty runs folders (but in their tests)
    if not os.environ.get("CNN_DATA_DIR"):
        monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    return tmp_path


@pytest.fixture
def real_data_dir(monkeypatch) -> Path:
    """The folder holding the real Fashion-MNIST files, as $CNN_DATA_DIR (see
    support.real_data_folder: skips on a user's clone without it, fails in CI)."""
    import support

    folder = support.real_data_folder()
    monkeypatch.setenv("CNN_DATA_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's, found by tests/live_app.py), one for the whole session;
    skipped where it is missing, unless CNN_REQUIRE_BROWSER is set (CI): there it fails."""
    import live_app

    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        sync_playwright = None
    problem = None
    if sync_playwright is None:
        problem = "the playwright package is not installed"
    elif live_app.CHROMIUM is None:
        problem = "no Chromium found (apt-get install chromium, or set CNN_CHROMIUM)"
    if problem:
        if os.environ.get("CNN_REQUIRE_BROWSER"):
            pytest.fail(f"browser test required (CNN_REQUIRE_BROWSER) but {problem}")
        pytest.skip(problem)
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        chromium = live_app.launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app, request):
    """A fresh tab on the module's `app`, at the module's VIEWPORT (else a projector's
    1280×720), with its TIMEOUT_MS (else 60 s); JavaScript errors in it fail the test."""
    viewport = getattr(request.module, "VIEWPORT", {"width": 1280, "height": 720})
    context = browser.new_context(viewport=viewport)
    tab = context.new_page()
    tab.set_default_timeout(getattr(request.module, "TIMEOUT_MS", 60_000))
    errors = []
    tab.on("pageerror", lambda error: errors.append(error))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"
