"""One change to how Streamlit runs scripts, made once per server process on import.

After every script run — each page load, each click, and each rerun of a fragment that
polls — Streamlit calls `keras.backend.clear_session()` whenever Keras is imported in the
server (`script_runner._clean_problem_modules`, meant for scripts that build a new model at
every run). This app imports Keras in the server as soon as one browser opens Classify,
Evaluate or Inside, and then each call costs ~250 ms of CPU (a full `gc.collect()`, and
TensorFlow's kernel cache thrown away, so the next prediction of every cached model builds
its kernels again). One browser watching a live run then took a quarter of a core; thirty
took more than the server had. The app never builds a model per run (models are cached,
training runs in its own process), so the Keras part is skipped; matplotlib's figures are
still closed as Streamlit does.
"""

from __future__ import annotations

import logging
import sys

from streamlit.runtime.scriptrunner import script_runner

_LOGGER = logging.getLogger(__name__)


def _clean_problem_modules_but_keras() -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


if callable(getattr(script_runner, "_clean_problem_modules", None)):
    script_runner._clean_problem_modules = _clean_problem_modules_but_keras
else:  # a Streamlit that no longer has it: nothing to change
    _LOGGER.debug("streamlit's _clean_problem_modules is gone; nothing to change")
