"""Classroom mode: one teacher, many students, one server on the teacher's laptop.

`python -m cnn classroom` writes the classroom's settings beside the runs
(`<runs>/.classroom/settings.json`: a hash of the teacher's secret token, the caps on what
students may start) and serves the app on the local network. Who is who:
    teacher   the browser that opened the teacher's link (it carries the token)
    student   anyone else; gives a display name once and gets a private key, kept in
              their link (?me=…), so a refresh keeps who they are
    local     the one-person app (`streamlit run`, localhost only): everything allowed
Every run records its owner; only its owner or the teacher may stop it, change it or
delete it; everyone may watch every run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import socket
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnn.errors import CnnError, ConfigError, RunError
from cnn.store import DamagedFile, atomic_write_json, read_json_object

CLASSROOM_ENV = "CNN_CLASSROOM"  # set by `python -m cnn classroom` for its server
TEACHER, STUDENT, LOCAL = "teacher", "student", "local"
MAX_NAME = 30


@dataclass(frozen=True)
class Person:
    """Who is using a browser."""

    role: str  # TEACHER, STUDENT or LOCAL
    name: str  # display name ("Teacher", a student's name, or "You")
    id: str = ""  # students: a hash of their key (stored with their runs); else the role

    @property
    def in_charge(self) -> bool:
        """The teacher, or the one person of the local app: may do anything."""
        return self.role in (TEACHER, LOCAL)


LOCAL_PERSON = Person(LOCAL, "You", LOCAL)


@dataclass
class Caps:
    """What a student may start (the teacher sets these; None: no limit)."""

    active_runs: int = 1  # runs queued or training at once, per student
    max_epochs: int | None = 20
    max_parameters: int | None = 1_000_000
    watch_only: bool = False  # students may not start runs at all


@dataclass
class Settings:
    token_hash: str
    caps: Caps = field(default_factory=Caps)
    created: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def folder(runs_root: Path) -> Path:
    return Path(runs_root) / ".classroom"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_active() -> bool:
    """Whether this process serves a classroom (set by `python -m cnn classroom`)."""
    return bool(os.environ.get(CLASSROOM_ENV))


def create(runs_root: Path, caps: Caps | None = None) -> tuple[Settings, str]:
    """New classroom settings and the teacher's token (shown once, stored only hashed)."""
    token = secrets.token_urlsafe(18)
    settings = Settings(_hash(token), caps or Caps(), time.time())
    folder(runs_root).mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder(runs_root) / "settings.json", settings.to_dict())
    return settings, token


def load(runs_root: Path) -> Settings | None:
    """The classroom's settings; None when there are none (or they are damaged)."""
    try:
        data = read_json_object(folder(runs_root) / "settings.json")
        caps = Caps(**data.get("caps", {}))
        return Settings(str(data["token_hash"]), caps, float(data.get("created", 0)))
    except (FileNotFoundError, DamagedFile, KeyError, TypeError, ValueError):
        return None


def save_caps(runs_root: Path, caps: Caps) -> None:
    settings = load(runs_root)
    if settings is None:
        raise CnnError("This server has no classroom settings; start it with "
                       "`python -m cnn classroom`.")
    settings.caps = caps
    atomic_write_json(folder(runs_root) / "settings.json", settings.to_dict())


def is_teacher_token(settings: Settings | None, token: str | None) -> bool:
    return bool(settings and token) and hmac.compare_digest(_hash(token), settings.token_hash)


# --- students ---------------------------------------------------------------------------
def clean_name(name: str) -> str:
    """A display name as typed, tidied; ConfigError when it is unusable."""
    name = " ".join(unicodedata.normalize("NFC", str(name)).split())
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    if not name:
        raise ConfigError("Type a name the class will recognise, e.g. your first name.")
    if len(name) > MAX_NAME:
        raise ConfigError(f"A name of at most {MAX_NAME} characters, please.")
    if name.lower() in (TEACHER, "you", LOCAL):
        raise ConfigError(f"“{name}” is taken; choose another name.")
    return name


def register(runs_root: Path, name: str) -> tuple[Person, str]:
    """A new student: their Person and the private key for their link."""
    name = clean_name(name)
    taken = {person.name for person in students(runs_root)}
    base, n = name, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    key = secrets.token_urlsafe(9)
    person = Person(STUDENT, name, _hash(key)[:16])
    roster = folder(runs_root) / "students"
    roster.mkdir(parents=True, exist_ok=True)
    atomic_write_json(roster / f"{person.id}.json", {"name": name, "joined": time.time()})
    return person, key


def student(runs_root: Path, key: str | None) -> Person | None:
    """The student whose key this is, or None."""
    if not key or not re.fullmatch(r"[A-Za-z0-9_-]{6,40}", key):
        return None
    person_id = _hash(key)[:16]
    try:
        data = read_json_object(folder(runs_root) / "students" / f"{person_id}.json")
    except (FileNotFoundError, DamagedFile):
        return None
    name = data.get("name")
    return Person(STUDENT, name, person_id) if isinstance(name, str) and name else None


def students(runs_root: Path) -> list[Person]:
    people = []
    for path in sorted((folder(runs_root) / "students").glob("*.json")):
        try:
            name = read_json_object(path).get("name")
        except (FileNotFoundError, DamagedFile):
            continue
        if isinstance(name, str):
            people.append(Person(STUDENT, name, path.stem))
    return people


# --- permissions ------------------------------------------------------------------------
def owner_fields(person: Person) -> dict[str, str]:
    """What a new run's status records about who started it."""
    return {"owner": person.name, "owner_id": person.id}


def may_control(person: Person, status: dict[str, Any]) -> bool:
    """Stop, pause, change or delete a run: its owner, or whoever is in charge. Runs made
    before classroom mode (no owner) belong to whoever is in charge."""
    return person.in_charge or (bool(status.get("owner_id"))
                                and status.get("owner_id") == person.id)


def check_control(person: Person, status: dict[str, Any]) -> None:
    if not may_control(person, status):
        owner = status.get("owner") or "the teacher"
        raise RunError(f"Only {owner} or the teacher can change this run.")


def check_start(person: Person, caps: Caps | None, epochs: int, parameters: int,
                active_of_person: int) -> None:
    """ConfigError when `person` may not start this run now (the teacher's caps)."""
    if person.in_charge or caps is None:
        return
    if caps.watch_only:
        raise ConfigError("The teacher has set this lesson to watch only: no runs can be "
                          "started by students now.")
    if active_of_person >= caps.active_runs:
        raise ConfigError(f"You already have {active_of_person} run(s) waiting or training; "
                          f"at most {caps.active_runs} at once in this class.")
    if caps.max_epochs is not None and epochs > caps.max_epochs:
        raise ConfigError(f"At most {caps.max_epochs} epochs in this class (you asked for "
                          f"{epochs}).")
    if caps.max_parameters is not None and parameters > caps.max_parameters:
        raise ConfigError(f"At most {caps.max_parameters:,} parameters in this class (this "
                          f"network has {parameters:,}): use fewer filters or units.")


def run_name(person: Person, dataset_title: str, preset_name: str, number: int) -> str:
    """A name people can say out loud: "Alex · Digits · fast #3"."""
    return f"{person.name} · {dataset_title} · {preset_name} #{number}"


# --- the network --------------------------------------------------------------------------
def lan_address() -> str:
    """This machine's address on the local network (the one other laptops reach)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            # No packet is sent: connecting a UDP socket only picks the outgoing interface.
            probe.connect(("10.255.255.255", 1))
            address = probe.getsockname()[0]
    except OSError:
        address = "127.0.0.1"
    if address.startswith("0.") or address == "0.0.0.0":
        address = "127.0.0.1"
    return address


def links(address: str, port: int, token: str) -> tuple[str, str]:
    """(the teacher's link, the students' link)."""
    base = f"http://{address}:{port}/"
    return f"{base}?token={token}", base


def qr_text(url: str) -> str:
    """The link as a QR code drawn with text characters, for the terminal."""
    import io

    import segno

    buffer = io.StringIO()
    segno.make(url, error="m").terminal(out=buffer, compact=True)
    return buffer.getvalue()


def qr_png(url: str, scale: int = 10) -> bytes:
    """The link as a QR code PNG (for the projector)."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make(url, error="m").save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()
