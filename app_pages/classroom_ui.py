"""The classroom's own widgets: a student joining, the teacher's panel (caps, the students'
link as a QR code, lesson links), and the presenter view's large type."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app_pages import common, visitor
from cnn import classroom, runs
from cnn.errors import CnnError

# Presenter view: everything one and a half times as big (Streamlit sizes in rem, so the
# root font size scales text, widgets and spacing alike), the sidebar out of the way, and
# less padding at the top so the live charts start above the fold at 1280×720.
PRESENTER_CSS = """
<style>
html { font-size: 24px; }
[data-testid="stHeader"] { height: 2rem; background: transparent; }
[data-testid="stMainBlockContainer"] { padding-top: 2.2rem; padding-bottom: 1rem;
                                       max-width: 100%; }
[data-testid="stCaptionContainer"] p, [data-testid="stCaptionContainer"] { font-size: 20px; }
[data-testid="stMetricValue"] { font-size: 2rem; }
</style>
"""


def presenter_style() -> None:
    st.html(PRESENTER_CSS)


def join_box() -> None:
    """A student gives a display name once; their private key goes into their link."""
    with st.form("join_class", border=True):
        st.markdown("**Join the class** — type the name the class knows you by.")
        name = st.text_input("Your name", max_chars=classroom.MAX_NAME, key="join_name")
        if st.form_submit_button("Join", type="primary"):
            try:
                person, key = classroom.register(runs.runs_dir(), name)
            except CnnError as error:
                common.show_error(error)
            else:
                visitor.set_view("me", key)
                st.session_state["link_me"] = key
                st.toast(f"Welcome, {person.name}!")
                st.rerun()


def who_line(person: classroom.Person | None) -> None:
    """Who this browser is, in the sidebar."""
    if not classroom.is_active():
        return
    with st.sidebar:
        if person is None:
            st.caption("Watching as a guest: join on the Train page to start runs.")
        else:
            st.caption(f"You: **{common.md(person.name)}**"
                       + (" (teacher)" if person.role == classroom.TEACHER else ""))


def teacher_panel() -> None:
    """Caps on what students may start, and the students' link as a QR code."""
    settings = classroom.load(runs.runs_dir())
    if settings is None:
        return
    with st.expander("Classroom: students' link and limits", icon=":material/school:"):
        address, port = classroom.lan_address(), st.get_option("server.port")
        student_link = classroom.links(address, port, "")[1]
        qr_col, caps_col = st.columns([1, 2])
        qr_col.image(classroom.qr_png(student_link), width=220,
                     caption=f"Students open {student_link}")
        caps = settings.caps
        with caps_col.form("classroom_caps"):
            watch_only = st.toggle("Watch only (students cannot start runs)",
                                   value=caps.watch_only)
            active = st.number_input("Runs each student may have waiting or training",
                                     1, 10, caps.active_runs)
            epochs = st.number_input("Most epochs a student may ask for", 1, 1000,
                                     caps.max_epochs or 1000)
            parameters = st.number_input("Most parameters in a student's network", 1_000,
                                         10_000_000, caps.max_parameters or 10_000_000,
                                         step=100_000)
            if st.form_submit_button("Save the limits"):
                new = dataclasses.replace(caps, watch_only=watch_only, active_runs=int(active),
                                          max_epochs=int(epochs),
                                          max_parameters=int(parameters))
                try:
                    classroom.save_caps(runs.runs_dir(), new)
                except CnnError as error:
                    common.show_error(error)
                else:
                    st.success("Saved: they apply to the next run a student starts.")
        joined = classroom.students(runs.runs_dir())
        st.caption(f"{len(joined)} student(s) joined"
                   + (": " + common.md(", ".join(p.name for p in joined)) if joined else "."))


def presenter_controls() -> None:
    """Turn the presenter view and following on or off, and choose what a lesson link
    hides; the link in the address bar carries it all."""
    with st.popover("Presenter view and lesson link", icon=":material/co_present:"):
        presenter = st.toggle("Presenter view (large type, charts first)",
                              value=visitor.flag("presenter"), key="view_presenter")
        follow = st.toggle("Follow the live run on every page", value=visitor.flag("follow"),
                           key="view_follow")
        hide = st.multiselect("Hide in this link", list(visitor.HIDEABLE),
                              default=sorted(visitor.hidden()),
                              format_func=visitor.HIDEABLE.get, key="view_hide")
        if st.button("Apply to this link", key="view_apply"):
            visitor.set_view("presenter", "1" if presenter else None)
            visitor.set_view("follow", "1" if follow else None)
            visitor.set_view("hide", ",".join(hide) or None)
            st.rerun()
        st.caption("This page as it is now — its settings, the view and what is hidden — "
                   "for students (without who you are):")
        st.code(visitor.lesson_link(), language=None, wrap_lines=True)
