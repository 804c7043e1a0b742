"""`python -m cnn explain`: its contract as a script sees it (a subprocess: exit codes, one
JSON object as the last stdout line, the pictures written), with the heatmap checked
against the core run in this process on the image as `predict` prepares it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnn import checkpoints, cli, datasets, explain, inference, runs, training
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent
DIGITS = list("0123456789")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    params = preset("fast", dataset="digits", train_size=128, epochs=2, batch_size=32,
                    precision="float32")
    root = tmp_path_factory.mktemp("explain-runs")
    run = runs.create_run(params, root=root, start=False)
    assert training.execute(run, min_record_interval=0)["state"] == runs.FINISHED
    return run


@pytest.fixture
def images(tmp_path):
    """A drawn '7' (dark on light, as on paper), a test image, and a file that is not one."""
    seven = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(seven).line([(40, 40), (160, 40), (90, 170)], fill=0, width=18)
    seven.save(tmp_path / "seven.png")
    Image.fromarray(datasets.load("digits").x_test[5][..., 0]).save(tmp_path / "test 5.png")
    (tmp_path / "notes.png").write_bytes(b"just some text")
    return tmp_path


def run_cli(*args, root):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "cnn", *args, "--runs-dir", str(root)],
                          capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
                          check=False)


def explained(run, path: Path, class_index=None) -> explain.Explanation:
    """What the core says of the file, prepared as `predict` prepares it."""
    model = checkpoints.load_model(run.model_path)
    info = datasets.get_info("digits")
    [result] = inference.classify_files(model, [(path.name, path.read_bytes())],
                                        info.image_shape, DIGITS, info.light_on_dark,
                                        framing=info.framing)
    return explain.Explainer(model).explain(result.prepared.array, class_index)


def test_json_out_and_a_bad_image_among_good_ones(trained, images, tmp_path):
    out = tmp_path / "pictures"
    files = [images / "seven.png", images / "notes.png", images / "test 5.png"]
    proc = run_cli("explain", trained.id, *map(str, files), "--json", "--out", str(out),
                   root=trained.root)
    assert proc.returncode == 2, proc.stderr  # one bad image: reported, the others explained
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {files[1]} is not an image")
    document = json.loads(proc.stdout.strip().splitlines()[-1])
    assert document["run_id"] == trained.id
    model = checkpoints.load_model(trained.model_path)
    assert document["layers"] == [
        {"name": layer.name, "kind": type(layer).__name__,
         "shape": [int(d) for d in layer.output.shape[1:]]} for layer in model.layers]
    good, bad, test = document["images"]
    assert bad == {"file": str(files[1]), "error": bad["error"]}
    for entry, path in ((good, files[0]), (test, files[2])):
        expected = explained(trained, path)
        assert entry["file"] == str(path)
        assert entry["label"] == entry["class"] == DIGITS[expected.predicted]
        assert entry["probability"] == pytest.approx(expected.probabilities[expected.predicted])
        assert entry["method"] == explain.DEFAULT_METHOD == "occlusion"
        heatmap = np.array(entry["heatmap"])
        assert heatmap.shape == (32, 32)  # the network's input height × width
        assert heatmap.min() >= 0 and heatmap.max() <= 1
        np.testing.assert_allclose(heatmap, expected.heatmap.values, atol=6e-5)

    # The pictures: every conv layer's filters, and per image its heatmaps and maps.
    assert sorted(p.name for p in out.glob("filters-*.png")) == ["filters-conv1.png",
                                                                 "filters-conv2.png"]
    conv1 = np.asarray(Image.open(out / "filters-conv1.png"))
    np.testing.assert_array_equal(conv1, explain.filter_grid(explain.filters(model, "conv1"),
                                                             factor=16))
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["seven", "test_5"]
    names = {p.name for p in (out / "seven").iterdir()}
    assert names == {"image.png", *(f"heatmap-{m}.png" for m in explain.METHODS),
                     "maps-conv1.png", "maps-pool1.png", "maps-conv2.png", "maps-pool2.png"}
    overlay = np.asarray(Image.open(out / "seven" / "heatmap-occlusion.png"))
    assert overlay.shape == (256, 256, 3)  # 32 px enlarged 8×: every pixel a visible square


def test_class_and_text_output(trained, images):
    proc = run_cli("explain", trained.id, str(images / "seven.png"), "--class", "3",
                   root=trained.root)
    assert proc.returncode == 0, proc.stderr
    expected = explained(trained, images / "seven.png", class_index=3)
    row, col = np.unravel_index(expected.heatmap.values.argmax(), (32, 32))
    assert proc.stdout.strip().splitlines()[-1] == (
        f"{images / 'seven.png'}: {DIGITS[expected.predicted]} "
        f"{expected.probabilities[expected.predicted]:.1%}; for 3, it looked most at row {row}, "
        f"column {col} of 32×32 (occlusion)")


def test_the_class_picks_the_map(trained, images, capsys):
    code = cli.main(["explain", trained.id, str(images / "test 5.png"), "--class", "8",
                     "--json", "--runs-dir", str(trained.root)])
    assert code == 0
    [entry] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["images"]
    expected = explained(trained, images / "test 5.png", class_index=8)
    assert entry["class"] == "8" and entry["label"] == DIGITS[expected.predicted]
    np.testing.assert_allclose(entry["heatmap"], expected.heatmap.values, atol=6e-5)


@pytest.mark.parametrize("args, message", [
    (["no-such-run", "x.png"], "error: There is no run 'no-such-run'."),
    (["RUN", "IMAGE", "--class", "eleven"], ("error: There is no class 'eleven'; the "
                                             "classes are: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9.")),
    (["RUN"], "error: the following arguments are required: images"),
])
def test_bad_input_is_one_line_and_exit_2(trained, images, capsys, args, message):
    args = [trained.id if a == "RUN" else str(images / "seven.png") if a == "IMAGE" else a
            for a in args]
    try:
        code = cli.main(["explain", *args, "--runs-dir", str(trained.root)])
    except SystemExit as exit:  # argparse
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message)


def test_a_run_without_a_model(trained, images, capsys, tmp_path):
    run = runs.create_run(trained.config, root=tmp_path / "runs", start=False)
    code = cli.main(["explain", run.id, str(images / "seven.png"), "--runs-dir",
                     str(tmp_path / "runs")])
    assert code == 2
    assert capsys.readouterr().err.strip() == f"error: Run {run.id} has no trained model yet."
