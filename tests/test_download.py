"""Tests for cnn.download and datasets.install, against a tiny http.server on 127.0.0.1.

Nothing here reaches the internet: the registry's URLs and checksums are monkeypatched to
point at files this test serves itself.
"""

import functools
import dataclasses
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from cnn import dataset_formats as formats
from cnn import datasets
from cnn import download
from cnn.errors import DatasetError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    # Never touch the real ~/.keras/datasets or $CNN_DATA_DIR; small chunks so that a few
    # kilobytes give several progress calls.
    monkeypatch.delenv("CNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setattr(download, "CHUNK_SIZE", 512)
    monkeypatch.setattr(download, "PROGRESS_STEP", 1000)


class Server:
    """Serves the files of `folder` on 127.0.0.1; `requests` lists the paths asked for."""

    def __init__(self, folder):
        self.folder, self.requests = folder, []
        outer = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):  # keep pytest's output clean
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        # a short poll interval: shutdown() waits for it, in every test
        serve = functools.partial(self.httpd.serve_forever, poll_interval=0.02)
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, monkeypatch):
    # Downloads from this local server are allowed; conftest switches them off elsewhere.
    monkeypatch.delenv("CNN_OFFLINE", raising=False)
    (tmp_path / "served").mkdir()
    served = Server(tmp_path / "served")
    yield served
    served.close()


def digests(data):
    return (f"md5:{hashlib.md5(data).hexdigest()}", f"sha256:{hashlib.sha256(data).hexdigest()}")


def tiny_cifar10_tarball(per_batch=2):
    """A real .tar.gz laid out like cifar-10-python.tar.gz, with protocol-2 pickled batches."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in formats.CIFAR10_FILES:
            rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            batch = {b"data": rows, b"labels": list(range(per_batch)), b"batch_label": b"b"}
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes())


# ----------------------------------------------------------------- download.download_file


def test_fetch_streams_reports_progress_and_checks(tmp_path, server):
    payload = np.random.default_rng(1).bytes(5000)
    (server.folder / "blob.bin").write_bytes(payload)
    calls = []
    dest = download.download_file(server.url + "blob.bin", tmp_path / "out" / "blob.bin", digests(payload),
                          lambda done, total: calls.append((done, total)))
    assert dest.read_bytes() == payload
    assert calls[0] == (0, 5000) and calls[-1] == (5000, 5000) and len(calls) >= 5
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left


def test_fetch_checksum_mismatch_keeps_nothing(tmp_path, server):
    (server.folder / "blob.bin").write_bytes(b"x" * 3000)
    dest = tmp_path / "out" / "blob.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"older copy")
    with pytest.raises(download.ChecksumError, match="sha256"):
        download.download_file(server.url + "blob.bin", dest, ["sha256:" + "0" * 64])
    assert dest.read_bytes() == b"older copy"  # untouched
    assert list(dest.parent.iterdir()) == [dest]


@pytest.mark.parametrize("url, reason", [("http://127.0.0.1:9/x", "refused"), (None, "404")])
def test_fetch_network_failures(tmp_path, server, url, reason):
    with pytest.raises(download.NetworkError, match=reason):
        download.download_file(url or server.url + "missing.bin", tmp_path / "out" / "x")
    assert list((tmp_path / "out").iterdir()) == []


def test_interrupted_fetch_removes_the_partial_file(tmp_path, server):
    (server.folder / "blob.bin").write_bytes(b"y" * 5000)

    def press_ctrl_c(done, total):
        if done > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download.download_file(server.url + "blob.bin", tmp_path / "out" / "b", progress=press_ctrl_c)
    assert list((tmp_path / "out").iterdir()) == []


# ----------------------------------------------------------------------- datasets.install


def with_files(monkeypatch, name, files):
    """The dataset's record, downloading `files` instead of its own."""
    info = datasets.DATASETS[name]
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(info, files=files))


def serve_cifar10(monkeypatch, server, checksums=None):
    tarball = tiny_cifar10_tarball()
    (server.folder / "cifar-10-python.tar.gz").write_bytes(tarball)
    remote = datasets.RemoteFile(
        "cifar-10-python.tar.gz", server.url + "cifar-10-python.tar.gz",
        digests(tarball) if checksums is None else checksums,
    )
    with_files(monkeypatch, "cifar10", (remote,))
    return tarball


def test_load_downloads_into_cnn_data_dir_and_keeps_the_tarball(tmp_path, monkeypatch, server):
    tarball = serve_cifar10(monkeypatch, server)
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "data"))
    calls = []
    dataset = datasets.load("cifar10", progress=lambda done, total: calls.append((done, total)))
    assert (tmp_path / "data" / "cifar-10-python.tar.gz").read_bytes() == tarball
    assert calls[0] == (0, len(tarball)) and calls[-1] == (len(tarball), len(tarball))
    assert dataset.x_train.shape == (10, 32, 32, 3) and dataset.x_test.shape == (2, 32, 32, 3)
    # already here: no second request
    assert datasets.install("cifar10") == tmp_path / "data" / "cifar-10-python.tar.gz"
    assert len(server.requests) == 1


def test_offline_mode_never_asks_the_network(tmp_path, monkeypatch, server):
    serve_cifar10(monkeypatch, server)
    monkeypatch.setenv("CNN_OFFLINE", "1")
    with pytest.raises(DatasetError, match="downloading is switched off. Put "
                                           "cifar-10-python.tar.gz"):
        datasets.install("cifar10", tmp_path / "data")
    assert server.requests == []


def test_download_with_wrong_checksum_leaves_no_file(tmp_path, monkeypatch, server):
    serve_cifar10(monkeypatch, server, checksums=("md5:" + "0" * 32,))
    with pytest.raises(DatasetError, match="arrived damaged .*md5") as error:
        datasets.install("cifar10", tmp_path / "data")
    assert "cifar-10-python.tar.gz" in str(error.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_download_fetches_only_missing_files_into_the_keras_cache(tmp_path, monkeypatch, server):
    rng = np.random.default_rng(2)
    arrays = (
        rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 30).astype(np.uint8),
        rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 6).astype(np.uint8),
    )
    files = dict(zip(formats.IDX_FILES, map(idx_bytes, arrays)))
    for name, data in files.items():
        (server.folder / name).write_bytes(data)
    with_files(monkeypatch, "fashion_mnist", tuple(
        datasets.RemoteFile(f"fashion-mnist/{name}", server.url + name, (), len(data))
        for name, data in files.items()
    ))
    cache = tmp_path / "keras-home" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    already = formats.IDX_FILES[0]
    (cache / already).write_bytes(files[already])
    calls = []
    path = datasets.install("fashion_mnist", progress=lambda *call: calls.append(call))
    assert path == cache
    assert sorted(server.requests) == sorted(f"/{name}" for name in formats.IDX_FILES[1:])
    expected_total = sum(len(files[name]) for name in formats.IDX_FILES[1:])
    assert calls[-1] == (expected_total, expected_total)
    assert all(total == expected_total for _, total in calls)
    np.testing.assert_array_equal(datasets.load("fashion_mnist").x_train[..., 0], arrays[0])
