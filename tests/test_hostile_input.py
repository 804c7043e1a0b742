"""Input that is not what it claims: config files, form values, uploads and their names.

Every case gets one readable sentence (exit code 2 on the command line), never a
traceback, and nothing of it reaches the page as Markdown.
"""

import math
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import support
from cnn import cli
from cnn.errors import ConfigError
from cnn.presets import preset

REPO = Path(__file__).resolve().parent.parent


# --- settings ---------------------------------------------------------------------------
@pytest.mark.parametrize("changes, words", [
    ({"epochs": "10"}, 'Epochs must be a whole number, not "10"'),
    ({"epochs": True}, "Epochs must be a whole number"),
    ({"epochs": 1e20}, "Epochs must be a whole number"),
    ({"learning_rate": math.nan}, "Learning rate must be a number"),
    ({"learning_rate": math.inf}, "Learning rate must be a number"),
    ({"seed": 2**32}, "Seed must be between 0 and 2,147,483,647"),
    ({"precision": "float16"}, "Precision must be one of"),
    ({"augment_flip": "yes"}, "Random horizontal flips is on or off"),
    ({"time_limit": 0}, "Time limit must be at least 1"),
])
def test_validate_refuses_values_of_the_wrong_kind(changes, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        preset("tutorial", dataset="digits").replace(**changes).validate((32, 32, 1), 10)


def run_cli(args, capsys):
    """`python -m cnn ARGS` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(args)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], err


CONFIG_FILES = {
    "a-list.json": ("[1, 2]", "must be a JSON object"),
    "null.json": ("null", "not null"),
    "a-number.json": ("3", "not the number 3"),
    "blocks-numbers.json": ('{"conv_blocks": [1, 2]}', "Conv block 1 must be an object"),
    "dense-number.json": ('{"dense_units": 5}', "dense_units must be a list"),
    "deep.json": ("[" * 50_000 + "]" * 50_000, "nested far too deeply"),
    "epochs-text.json": ('{"dataset": "digits", "epochs": "10"}', "whole number"),
    "nan.json": ('{"dataset": "digits", "learning_rate": NaN}', "not valid JSON"),
    "infinity.json": ('{"dataset": "digits", "learning_rate": Infinity}', "not valid JSON"),
    "true.json": ('{"dataset": "digits", "epochs": true}', "whole number"),
    "huge.json": ('{"dataset": "digits", "epochs": 1e20}', "whole number"),
    "seed.json": ('{"dataset": "digits", "seed": 4294967296}', "Seed must be between"),
    "float16.json": ('{"dataset": "digits", "precision": "float16"}', "Precision must be one"),
    "unknown.json": ('{"dataset": "digits", "colour": "red"}', "Unknown setting(s): colour"),
    "not-utf8.json": (b"\xff\xfe{", "Cannot read the config file"),
}


@pytest.mark.parametrize("name", list(CONFIG_FILES))
def test_bad_config_files_are_one_line(name, tmp_path, capsys):
    content, words = CONFIG_FILES[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = run_cli(["train", "--config", str(path)], capsys)
    assert_one_line(code, err, words)


def test_the_config_file_is_not_overridden_by_absent_flags(tmp_path, capsys):
    # The file says 0 epochs: a flag left out must not quietly put the default back.
    path = tmp_path / "c.json"
    path.write_text('{"dataset": "digits", "epochs": 0, "batch_size": 16}')
    code, _, err = run_cli(["train", "--config", str(path)], capsys)
    assert_one_line(code, err, "Epochs must be between 1 and 1,000 (got 0)")
    # The flags given do override the file.
    path.write_text('{"dataset": "digits", "epochs": 3, "batch_size": 0}')
    code, _, err = run_cli(["train", "--config", str(path), "--batch-size", "-4"], capsys)
    assert_one_line(code, err, "Batch size must be between 1 and 8,192 (got -4)")


@pytest.mark.parametrize("args, words", [
    (["train", "--epochs", "1e9"], "invalid int value: '1e9'"),
    (["train", "--optimizer", "adagrad"], "invalid choice: 'adagrad'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["predict"], "the following arguments are required"),
])
def test_argument_mistakes_are_one_line_not_the_usage(args, words, capsys):
    code, _, err = run_cli(args, capsys)
    assert_one_line(code, err, words)


def test_a_real_command_line_prints_no_traceback(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cnn", "train", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


# --- the form ------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, words", [(1e9, "Epochs must be between 1 and 1,000"),
                                          (2.5, "Epochs must be a whole number, not 2.5")])
def test_typed_epochs_are_checked_not_silently_changed(typed, words, monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    at = support.open_page("app_pages/train.py")
    at.number_input(key="train_epochs").set_value(typed).run()
    assert not at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="train_start").disabled


def test_the_form_never_builds_a_model_in_the_server(tmp_path):
    """The issue's 268 M-parameter settings (digits, padding same, no pooling, Dense 4096):
    refused with the reason, and TensorFlow is never even imported by the page."""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({str(REPO / 'streamlit_app.py')!r}, default_timeout=120)
at.run(); at.switch_page("app_pages/train.py"); at.run()
at.selectbox(key="train_padding").set_value("same")
for i in range(3):
    at.toggle(key=f"train_block{{i}}_pool").set_value(False)
at.text_input(key="train_dense").input("4096").run()
print(repr([e.value for e in at.error]), bool(at.exception), at.button(key="train_start").disabled)
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CNN_DATA_DIR": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=REPO)
    errors, exception, disabled = proc.stdout.splitlines()[-2].rsplit(" ", 2)
    assert "parameters; at most 10,000,000 are allowed" in errors, proc.stdout + proc.stderr
    assert exception == "False" and disabled == "True"
    assert proc.stdout.splitlines()[-1] == "False False"


# --- uploads -------------------------------------------------------------------------------
def png_16bit(side: int) -> bytes:
    """A tiny file (zlib of zeros) that decodes to a side×side 16-bit grey image."""
    raw = zlib.compress(b"\0" * ((2 * side + 1) * side), 9)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + \
        chunk(b"IEND", b"")


def test_a_small_file_that_decodes_huge_is_shrunk_within_bounded_memory(tmp_path):
    path = tmp_path / "big16.png"
    path.write_bytes(png_16bit(7000))
    assert path.stat().st_size < 200_000
    code = f"""
import resource, sys
sys.path.insert(0, {str(REPO)!r})
from cnn.images import read_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = read_image({str(path)!r}, max_side=1024)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(image.mode, image.size, (after - before) // 1024)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.startswith("L (1024, 1024)"), proc.stdout + proc.stderr
    grown_mb = int(proc.stdout.split()[-1])
    # The decode itself is 98 MB (7000² × 2 bytes); converting at full size took 1.2 GB.
    assert grown_mb < 300, f"peak memory grew by {grown_mb} MB"


HOSTILE_NAMES = ["![x](http://127.0.0.1:9/pwn.png).png", "<img src=x onerror=alert(1)>.png",
                 ":red[**HACKED**].png", "# heading.png", "`code`.png", "$x^2$.png"]


def test_hostile_file_names_are_shown_as_text(monkeypatch, tmp_path):
    from test_page_classify import digit_one  # a real drawing of a one, as PNG bytes

    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    from cnn import runs, training

    run = runs.create_run(preset("fast", dataset="digits", epochs=1, train_size=200,
                                 precision="float32"), start=False)
    training.execute(run, min_record_interval=0)
    at = support.open_page("app_pages/classify.py")
    image = digit_one()
    at.file_uploader(key="classify_uploads").set_value(
        [(name, image, "image/png") for name in HOSTILE_NAMES]
        + [("![y](http://127.0.0.1:9/broken.png).png", b"not an image", "image/png")]).run()
    assert not at.exception
    shown = [m.value for m in at.markdown] + [e.value for e in at.error]
    for text in shown:
        # No Markdown image/link, no raw HTML, no directive, no heading, no code span
        # survives: every such character is escaped.
        assert not re.search(r"(?<!\\)!\[|(?<!\\)<img|:red\[|(?<!\\)`|(?<!\\)\$", text), text
    assert any(r"\!\[x\]" in t for t in shown) and any(r"\!\[y\]" in t for t in shown)
