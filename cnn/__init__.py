"""CNN Playground core: datasets, models, training runs, evaluation and inference.

Never imports streamlit; the app in `app_pages/` and the CLI (`python -m cnn`) are thin
layers over this package.
"""
