"""CNN Playground core: datasets, models, training runs, evaluation and inference.

Never imports streamlit; the app in `app_pages/` and the CLI (`python -m cnn`) are thin
layers over this package.
"""

import os

# TensorFlow's C++ start-up chatter (oneDNN notices, "no CUDA driver") is noise for a
# student; real errors still surface as Python exceptions. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
