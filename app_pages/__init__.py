"""The Streamlit pages; each is a short script run by `st.navigation` in streamlit_app.py."""
