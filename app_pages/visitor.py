"""Who is using this browser, and how they see the app.

Both travel in the link, so a refresh or a shared lesson link keeps them: `token` (the
teacher's secret) or `me` (a student's private key), and the view options `presenter`,
`follow` and `hide`. Streamlit drops query parameters when the page changes, so they are
kept in the session and put back into the link on every run.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn import classroom, runs

# What travels in every link of a page (Streamlit drops query parameters on a page
# change, so they are kept in the session and put back): who you are, how you see it.
IDENTITY_KEYS = ("token", "me")
VIEW_KEYS = ("presenter", "follow", "hide")
# Controls a teacher can hide in a lesson link (as TensorFlow Playground lets a teacher).
HIDEABLE = {"settings": "the settings", "start": "the Start button",
            "controls": "Stop, pause and step", "learning_rate": "the learning-rate buttons"}


def read_link() -> None:
    """Take identity and view options from the link into the session, and put them back
    into the link, so a refresh or a shared link keeps them."""
    query, state = st.query_params, st.session_state
    for key in IDENTITY_KEYS + VIEW_KEYS:
        if key in query:
            state[f"link_{key}"] = query[key]
    kept = {key: state[f"link_{key}"] for key in IDENTITY_KEYS + VIEW_KEYS
            if state.get(f"link_{key}") not in (None, "", "0")}
    for key, value in kept.items():
        if query.get(key) != value:
            query[key] = value


def flag(key: str) -> bool:
    """A yes/no view option from the link: presenter=1, follow=1."""
    return str(st.session_state.get(f"link_{key}", "")).lower() in ("1", "on", "true", "yes")


def hidden() -> set[str]:
    """The controls this link hides (hide=settings,learning_rate)."""
    return {h for h in str(st.session_state.get("link_hide", "")).split(",") if h in HIDEABLE}


def set_view(key: str, value: str | None) -> None:
    """Change a view option for this browser and its link."""
    st.session_state[f"link_{key}"] = value
    if value in (None, "", "0"):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = value


@st.cache_resource(ttl=2.0, max_entries=8)
def _classroom_settings(root: str):
    return classroom.load(Path(root))


@st.cache_resource(ttl=30.0, max_entries=512)
def _student(root: str, key: str):
    return classroom.student(Path(root), key)


def person() -> classroom.Person | None:
    """Who is using this browser: the local user, the teacher (their link's token), a
    student who has joined (their link's key), or None (a student who has not yet)."""
    if not classroom.is_active():
        return classroom.LOCAL_PERSON
    root = str(runs.runs_dir())
    if classroom.is_teacher_token(_classroom_settings(root),
                                  st.session_state.get("link_token")):
        return classroom.Person(classroom.TEACHER, "Teacher", classroom.TEACHER)
    key = st.session_state.get("link_me")
    return _student(root, key) if key else None


def caps() -> classroom.Caps | None:
    """What students may start (None outside a classroom)."""
    if not classroom.is_active():
        return None
    settings = _classroom_settings(str(runs.runs_dir()))
    return settings.caps if settings else classroom.Caps()


def lesson_link() -> str:
    """This page's link as it is now (settings, view options), without who you are: the
    link to hand to students (never the teacher's token)."""
    from urllib.parse import urlencode, urlsplit, urlunsplit

    url = urlsplit(st.context.url or "http://localhost/")
    query = {k: v for k, v in st.query_params.to_dict().items() if k not in IDENTITY_KEYS}
    return urlunsplit((url.scheme, url.netloc, url.path, urlencode(query), ""))
