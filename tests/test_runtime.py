"""What depends on the machine: bfloat16 where the CPU is fast at it, float16 on older
GPUs, and TensorFlow's start-up chatter kept out of the terminal."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn import runtime

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("flags, fast", [
    ("fpu avx2 fma avx512f avx512_bf16", True),   # AMD Zen 4, Intel Cooper Lake
    ("fpu avx2 amx_tile amx_bf16 amx_int8", True),  # Intel Sapphire Rapids
    ("fpu avx avx2 fma", False),                    # AVX2 only: bfloat16 is emulated, slow
    ("avx512_bf16x", False),                        # a longer flag that merely contains it
    ("", False),                                    # unknown (not Linux)
])
def test_bfloat16_only_on_cpus_that_compute_it(flags, fast):
    assert runtime.cpu_has_fast_bf16(flags) is fast


@pytest.mark.parametrize("capability, policy", [
    ((9, 0), "mixed_bfloat16"),  # H100
    ((8, 0), "mixed_bfloat16"),  # A100
    ((8, 6), "mixed_bfloat16"),  # RTX 30xx
    ((7, 5), "mixed_float16"),   # T4
    ((7, 0), "mixed_float16"),   # V100
    (None, "mixed_float16"),     # not reported
])
def test_gpus_get_bfloat16_from_ampere_on_else_float16(capability, policy):
    assert runtime.gpu_policy(capability) == policy


def test_this_machine_gets_a_policy_it_can_run():
    import tensorflow as tf

    policy = runtime.auto_policy()
    assert policy in ("float32", "mixed_bfloat16", "mixed_float16")
    if tf.config.list_physical_devices("GPU") or not Path("/proc/cpuinfo").exists():
        return
    words = Path("/proc/cpuinfo").read_text(errors="ignore").split()
    bf16 = "avx512_bf16" in words or "amx_bf16" in words
    assert policy == ("mixed_bfloat16" if bf16 else "float32")


def test_float16_training_gets_loss_scaling():
    from cnn.models import compile_model, make_model
    from cnn.presets import preset

    params = preset("fast", precision="mixed_float16")
    model = compile_model(make_model(params, (28, 28, 1), 10), params)
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    assert model.get_layer("conv1").compute_dtype == "float16"
    assert model.get_layer("classes").compute_dtype == "float32"


def test_starting_tensorflow_prints_nothing_on_a_healthy_machine():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                            "CNN_DEBUG")}
    env["PYTHONPATH"] = str(REPO)
    code = ("from cnn import runtime; runtime.start_tensorflow(); import keras; "
            "print(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])"
            "(keras.ops.ones((1, 2))).shape)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "(1, 1)"
    assert proc.stderr == "", proc.stderr
