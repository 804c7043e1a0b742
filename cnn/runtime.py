"""Starting TensorFlow quietly, and the choices that depend on the machine it runs on.

TensorFlow prints start-up chatter from C++ on the process's stderr before its own log
level is read ("Could not find cuda drivers", "failed call to cuInit" on every machine
without a GPU, CPU-feature notices). To a student that looks like a failure. So the first
import runs with stderr captured; known chatter is dropped and anything else is passed on,
so a real problem still shows. $CNN_DEBUG=1 passes everything on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import threading

# Lines TensorFlow prints on a healthy machine (CPU-only or GPU).
_CHATTER = re.compile(
    r"cudart_stub|cuda_platform|cuInit|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|"
    r"absl::InitializeLog|cpu_feature_guard|This TensorFlow binary is optimized|"
    r"To enable the following instructions|rebuild TensorFlow with the appropriate|"
    r"oneDNN custom operations|TF_ENABLE_ONEDNN_OPTS|computer_vision|"
    r"Unable to register cu(DNN|FFT|BLAS) factory|dso_loader|"
    r"gpu_device\.cc.*(Created device|Cannot dlopen)|port\.cc|"
    r"^\s*$")
_lock = threading.Lock()
startup_output = ""  # what TensorFlow printed while starting (for $CNN_DEBUG and bug reports)


@contextlib.contextmanager
def _stderr_captured():
    """Capture what C++ and Python write to file descriptor 2 inside the block."""
    global startup_output
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            startup_output = capture.read().decode("utf-8", "replace")


@functools.cache
def start_tensorflow():
    """Import TensorFlow (and look for GPUs, which is when CUDA speaks) without its chatter;
    returns the module. Call it before the first `import keras` of a process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get("CNN_DEBUG"):
        import tensorflow as tf

        tf.config.list_physical_devices()
        return tf
    with _lock:
        try:
            with _stderr_captured():
                import tensorflow as tf

                gpus = tf.config.list_physical_devices("GPU")
                for gpu in gpus:
                    _share_memory(tf, gpu)
        except BaseException:
            sys.stderr.write(startup_output)
            raise
        kept = [line for line in startup_output.splitlines() if not _CHATTER.search(line)]
        if kept:
            sys.stderr.write("\n".join(kept) + "\n")
    return tf


def _share_memory(tf, gpu) -> None:
    # Let TensorFlow take GPU memory as needed instead of all of it up front, so the web
    # server (predictions) and a training worker can share one GPU.
    try:
        tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # already initialised: too late to change, nothing to do
        pass


# --- precision --------------------------------------------------------------------------
def cpu_has_fast_bf16(cpu_flags: str) -> bool:
    """Whether a CPU with these /proc/cpuinfo flags computes bfloat16 fast: AVX512-BF16
    (AMD Zen 4, Intel Cooper Lake) or AMX-BF16 (Intel Sapphire Rapids and later)."""
    flags = set(cpu_flags.split())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def gpu_policy(compute_capability: tuple[int, int] | None) -> str:
    """bfloat16 needs Ampere (compute capability 8.0) or newer; older GPUs (T4, V100) have
    fast float16 instead, which needs loss scaling."""
    if compute_capability is not None and tuple(compute_capability) >= (8, 0):
        return "mixed_bfloat16"
    return "mixed_float16"


def _cpu_flags() -> str:
    # Only Linux says, in /proc/cpuinfo; elsewhere we do not know, and float32 is the safe
    # choice (bfloat16 without hardware support is several times slower).
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as f:
            return " ".join(line.split(":", 1)[1] for line in f
                            if line.startswith("flags") and ":" in line)
    except OSError:
        return ""


@functools.cache
def auto_policy() -> str:
    """The Keras dtype policy "auto" means on this machine."""
    tf = start_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        try:
            details = tf.config.experimental.get_device_details(gpus[0])
            return gpu_policy(details.get("compute_capability"))
        except (RuntimeError, ValueError):
            return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_fast_bf16(_cpu_flags()) else "float32"
