"""CNN Playground: `streamlit run streamlit_app.py`. Only the page config and navigation."""

import streamlit as st

from app_pages import (
    classroom_ui,
    common,
    streamlit_fixes,  # noqa: F401  (changes how Streamlit runs scripts)
    visitor,
)

common.init_state()  # reads the link: who this is, and how they see the app
presenter = visitor.flag("presenter")
st.set_page_config(page_title="CNN Playground", page_icon="🧠", layout="wide",
                   initial_sidebar_state="collapsed" if presenter else "auto")
common.page_style()
if presenter:
    classroom_ui.presenter_style()
classroom_ui.who_line(visitor.person())
st.navigation([
    st.Page(common.HOME, title="Home", icon="🏠", default=True),
    st.Page(common.DATA, title="Data", icon="🖼️"),
    st.Page(common.MAKE_DATASET, title="Make your own", icon="✏️"),
    st.Page(common.TRAIN, title="Train", icon="🏋️"),
    st.Page(common.EVALUATE, title="Evaluate", icon="📊"),
    st.Page(common.LEADERBOARD, title="Leaderboard", icon="🏆"),
    st.Page(common.CLASSIFY, title="Classify", icon="🔍"),
    st.Page(common.INSIDE, title="Inside the network", icon="🔬"),
]).run()
