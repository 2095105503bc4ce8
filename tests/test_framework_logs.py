"""The frameworks' log lines are filtered from keras-wrn's standard error;
everything else (its own lines, tracebacks, crash reports) gets through."""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from keras_wrn.framework_logs import FRAMEWORK_LINE, verbose_requested

# Lines TensorFlow 2.21, absl and XLA printed during `keras-wrn train --smoke --verbose`.
SEEN = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795469939.013345    7548 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1795469939.013726    7548 cudart_stub.cc:31] Could not find cuda drivers on your machine",
    "I0000 00:00:1795469939.070355    7548 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
    "E0000 00:00:1795469944.017465    7548 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
    "W0000 00:00:1795469945.276713    7548 dataset.cc:997] Input of GeneratorDatasetOp::Dataset will not be",
    "I0000 00:00:1795469946.987927    7598 service.cc:161]   StreamExecutor [0]: Host, Default Version",
    "W0000 00:00:1795469947.062397    7598 assert_op.cc:39] Ignoring Assert operator assert_non_negative",
    "I0000 00:00:1795469947.072589    7598 dump_mlir_util.cc:269] disabling MLIR crash reproducer",
    "I0000 00:00:1795469951.462520    7598 device_compiler.h:208] Compiled cluster using XLA!",
    "WARNING:tensorflow:5 out of the last 5 calls to <function> triggered tf.function retracing.",
    # LiteRT and the TFLite converter, during `keras-wrn export --format tflite` and the benchmark.
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8",
    # JAX's CPU collectives (gloo) in a multi-host run under JAX.
    "[Gloo] Rank 0 is connected to 1 peer ranks. Expected number of connected peer ranks is : 1",
    # The continuation lines of TensorFlow's and JAX's gRPC errors when a worker or host is gone.
    "Additional GRPC error information from remote target /job:worker/replica:0/task:1 while calling "
    "/tensorflow.WorkerService/RecvBuf:",
    ':UNKNOWN:Error received from peer  {grpc_message:"Socket closed", grpc_status:14}',
    "/job:worker/replica:0/task:1",
    "The tasks have crashed. Check the task logs for an earlier error, or scheduler events (e.g. preemption, "
    "eviction) to debug further.",
    "The error could be from a previous operation. Restart your program to reset. "
    "[type.googleapis.com/tensorflow.DerivedStatus='']",
]
OURS = [
    "Training wrn-16-4 on digits: 1 replica(s), batch 2, float32, XLA on.",
    "epoch 1/2: train loss 2.7769, test error 100.00%, 1 img/s",
    "Error: Unknown model 'wrn-16-5'. Did you mean wrn-16-8?",
    "Traceback (most recent call last):",
    "RuntimeError: a real crash",
    "Fatal Python error: Segmentation fault",
    # absl's fatal lines: the one reason a process aborts (measured: an unknown XLA_FLAGS entry otherwise exits silently).
    "F1206 14:57:21.442853   27699 parse_flags_from_env.cc:234] Unknown flag in XLA_FLAGS: --xla_cpu_collective_x=1",
    "WARNING: the newest checkpoint is damaged",
    "Error: worker 1 of 2 stopped answering (UnavailableError: Collective ops is aborted by: Socket closed). The "
    "run folder runs/x holds every finished epoch (1 of 6): start every worker again with the same command.",
]


@pytest.mark.parametrize("line", SEEN)
def test_framework_lines_are_recognised(line):
    assert FRAMEWORK_LINE.match(line)


@pytest.mark.parametrize("line", OURS)
def test_our_lines_and_errors_are_not(line):
    assert not FRAMEWORK_LINE.match(line)


def test_verbose_by_flag_or_environment(monkeypatch):
    monkeypatch.delenv("KERAS_WRN_VERBOSE", raising=False)
    assert not verbose_requested(["train"]) and verbose_requested(["--verbose", "train"])
    monkeypatch.setenv("KERAS_WRN_VERBOSE", "1")
    assert verbose_requested(["train"])


def run(code):
    """Runs `code`; its stderr as written (bytes decoded without newline translation)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, timeout=60)
    result.stderr = result.stderr.decode()
    return result


def test_the_filter_drops_log_lines_written_to_descriptor_2_and_keeps_the_rest():
    result = run("""
        import os, sys
        from keras_wrn import framework_logs
        framework_logs.quiet()
        os.write(2, b"I0000 00:00:1.5    7548 port.cc:153] oneDNN custom operations are on.\\n")
        os.write(2, b"progress 1\\rprogress 2\\r")
        print("keras-wrn: kept", file=sys.stderr)
        raise RuntimeError("a real crash")
    """)
    assert result.returncode == 1
    assert "port.cc" not in result.stderr
    assert "progress 1\rprogress 2\r" in result.stderr
    assert "keras-wrn: kept" in result.stderr
    assert "Traceback" in result.stderr and "RuntimeError: a real crash" in result.stderr


def test_a_crash_is_still_reported():
    result = run("""
        from keras_wrn import framework_logs
        framework_logs.quiet()
        import ctypes
        ctypes.string_at(0)
    """)
    assert result.returncode != 0
    assert "Segmentation fault" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_a_fatal_framework_line_says_why_the_process_ends():
    result = run("""
        import os
        os.environ["XLA_FLAGS"] = "--xla_no_such_flag=1"
        os.environ["JAX_PLATFORMS"] = "cpu"
        from keras_wrn import framework_logs
        framework_logs.quiet()
        import jax
        jax.devices()
    """)
    assert result.returncode != 0
    assert "Unknown flag in XLA_FLAGS: --xla_no_such_flag=1" in result.stderr
