"""Files that several processes share: written whole or not at all, read without trusting them.

Every JSON file of a run or a job is written here (temp file in the same folder + fsync +
rename: a reader sees the old content or the new, never half), and every one is read here
(a missing, damaged or wrongly shaped file never crashes a reader). A write that fails for
lack of room or permission raises `StorageError` with one sentence for the user, and leaves
no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cnn.errors import StorageError

MAX_JSON_BYTES = 4 * 1024 * 1024  # status/config/evaluation files are kilobytes; refuse giants


def storage_error(error: OSError, path: Path | str, action: str = "save") -> StorageError:
    """An OSError as one sentence a student can act on: full disk, read-only folder..."""
    place = Path(path).parent
    if error.errno == errno.ENOSPC or error.errno == getattr(errno, "EDQUOT", None):
        text = f"The disk is full: could not {action} {Path(path).name} in {place}. " \
               "Free some space (delete old runs on the Evaluate page) and try again."
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        text = f"The folder {place} cannot be written to (it is read-only or belongs to " \
               f"someone else), so {Path(path).name} could not be saved."
    else:
        text = f"Could not {action} {Path(path).name} in {place} ({error.strerror or error})."
    return StorageError(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write via a temp file in the same folder + rename: readers see old or new, never half.

    Raises StorageError (disk full, read-only folder...) with nothing left behind.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a runs folder may be shared
        os.replace(tmp, path)
    except OSError as error:
        _remove_quietly(tmp)
        raise storage_error(error, path) from error
    except BaseException:
        _remove_quietly(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    # allow_nan=False: NaN is not JSON; a value that slipped through must fail here, loudly,
    # not make a file that other readers reject.
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def _remove_quietly(path: str | None) -> None:
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


class DamagedFile(ValueError):
    """A file exists but is not what it should be; the message says what is wrong."""


def load_json(path: str | Path) -> Any:
    """The file's JSON. FileNotFoundError when missing; DamagedFile when unreadable, not JSON,
    too large or too deeply nested (a hostile file must not crash the reader)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise DamagedFile(f"{path.name} cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_JSON_BYTES:
        raise DamagedFile(f"{path.name} is too large to be one of ours")
    try:
        return json.loads(data, parse_constant=_no_constants)
    except (ValueError, RecursionError) as error:
        raise DamagedFile(f"{path.name} is damaged (not valid JSON: {_short(error)})") from None


def _no_constants(name: str):
    # NaN/Infinity are not JSON; Python's parser accepts them unless told not to.
    raise ValueError(f"{name} is not a number JSON allows")


def _short(error: Exception) -> str:
    return str(error).split("\n")[0][:120] or type(error).__name__


def read_json(path: str | Path, default: Any = None) -> Any:
    """The file's JSON, or `default` if missing or damaged (a damaged file never crashes)."""
    try:
        return load_json(path)
    except (FileNotFoundError, DamagedFile):
        return default


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON object (dict). FileNotFoundError when missing, DamagedFile otherwise."""
    value = load_json(path)
    if not isinstance(value, dict):
        raise DamagedFile(f"{Path(path).name} holds a {type(value).__name__}, not an object")
    return value


class JsonLinesReader:
    """Incremental reader of an append-only JSON-lines file.

    Only complete lines are consumed; a half-written last line is left for the next call,
    and a line that is not a JSON object is skipped. Re-reading costs only the new bytes.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.offset = 0
        self.records: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:  # missing (not written yet) or unreadable: nothing new
            return self.records
        end = chunk.rfind(b"\n")
        if end < 0:
            return self.records
        for line in chunk[: end + 1].splitlines():
            try:
                record = json.loads(line, parse_constant=_no_constants)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict):
                self.records.append(record)
        self.offset += end + 1
        return self.records
