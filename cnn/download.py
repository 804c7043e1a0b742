"""The network transfer: download one file safely — streamed, checked, and moved into place
only when complete.

Knows nothing about datasets; `cnn.datasets.install` turns these errors into messages for
the user. Hand-written rather than `keras.utils.get_file` because it must be cancellable
mid-transfer from another process (the Data page's Cancel) and never leave a partial file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

CHUNK_SIZE = 64 * 1024  # bytes read from the network at a time
PROGRESS_STEP = 1024 * 1024  # bytes between two progress calls
TIMEOUT_S = 30  # seconds without an answer before giving up

Progress = Callable[[int, int | None], None]


class DownloadError(Exception):
    """The file could not be fetched; nothing was written."""


class NetworkError(DownloadError):
    """The server could not be reached, refused the file, or the transfer broke off."""


class ChecksumError(DownloadError):
    """The whole file arrived but its checksum is not the published one."""


def download_file(
    url: str,
    dest: str | Path,
    checksums: Iterable[str] = (),
    progress: Progress | None = None,
) -> Path:
    """Download `url` to `dest` and return `dest`.

    The bytes are written to a hidden temporary file in `dest`'s folder, which replaces
    `dest` (os.replace, atomic) only when the transfer is complete and every checksum in
    `checksums` ("md5:<hex>", "sha256:<hex>", ...) matches. On any failure, Ctrl+C included,
    the temporary file is deleted and `dest` is left as it was.

    `progress(bytes_done, bytes_total_or_None)` is called at the start, every PROGRESS_STEP
    bytes and at the end; it may raise to cancel the download.

    Raises NetworkError or ChecksumError; OSError when the file cannot be written.
    """
    dest = Path(dest)
    expected = [spec.partition(":")[::2] for spec in checksums]
    hashers = {algorithm: hashlib.new(algorithm) for algorithm, _ in expected}
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            _stream(url, out, hashers.values(), progress)
        for algorithm, digest in expected:
            if hashers[algorithm].hexdigest() != digest.lower():
                raise ChecksumError(f"its {algorithm} checksum does not match the published one")
        os.chmod(temp, 0o644)  # mkstemp makes it private; a data folder may be shared
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return dest


def _stream(url: str, out, hashers, progress: Progress | None) -> None:
    done = reported = 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress:
                progress(0, total)
            while chunk := response.read(CHUNK_SIZE):
                out.write(chunk)
                for hasher in hashers:
                    hasher.update(chunk)
                done += len(chunk)
                if progress and done - reported >= PROGRESS_STEP:
                    progress(done, total)
                    reported = done
    except urllib.error.HTTPError as error:
        raise NetworkError(f"the server answered {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise NetworkError(_plain(error.reason)) from error
    # errors after the connection is open come unwrapped
    except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
        raise NetworkError(_plain(error)) from error
    if total is not None and done != total:
        raise NetworkError(f"the transfer stopped after {done} of {total} bytes")
    if progress and done != reported:
        progress(done, total)


def _plain(reason: object) -> str:
    # "[Errno 111] Connection refused" -> "Connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
