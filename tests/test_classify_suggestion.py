"""The Classify page's Draw tab suggests the drawings preset for a light-on-dark dataset whose
network was trained without it, and only then."""

import shutil

import pytest

import support
from cnn import runs, training
from cnn.presets import preset

PAGE = "app_pages/classify.py"
SUGGESTION = "Train with the **Drawings** preset"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny digits run per preset."""
    root = tmp_path_factory.mktemp("suggestion-runs")
    found = {}
    for name in ("fast", "drawings"):
        params = preset(name, dataset="digits", train_size=128, epochs=1, batch_size=32,
                        precision="float32")
        run = runs.create_run(params, root=root, start=False)
        assert training.execute(run, min_record_interval=0)["state"] == runs.FINISHED
        found[name] = run
    return found


def draw_tab_captions(name, trained) -> list[str]:
    root = runs.runs_dir()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained[name].path, root / trained[name].id)
    at = support.open_page(PAGE, timeout=60)
    assert at.selectbox(key="classify_run").value == trained[name].id
    return [c.value for c in at.caption]


def test_a_network_trained_without_it_gets_the_suggestion(trained):
    assert any(SUGGESTION in c for c in draw_tab_captions("fast", trained))


def test_a_network_trained_with_it_does_not(trained):
    assert not any(SUGGESTION in c for c in draw_tab_captions("drawings", trained))
