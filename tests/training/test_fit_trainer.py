"""`keras-wrn train` under JAX: the Keras fit route, with the same run folder
as the tf.distribute route, read by `evaluate` and `export` like any other."""

import importlib.util
import json
import os
import signal
import subprocess
import time

import pytest

from keras_wrn.training import logs
from tests.helpers import CLI, ENV, invoke, metrics, tensorboard_scalars

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
JAX = {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


def jax_train(*args, timeout=900):
    return subprocess.run([*CLI, "train", *map(str, args)], capture_output=True, text=True, env=JAX,
                          timeout=timeout)


def test_a_jax_smoke_run_writes_a_run_folder_tensorflow_reads(tmp_path):
    run_dir = tmp_path / "run"
    result = jax_train("--smoke", "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Keras fit on jax" in result.stdout and "Done: 6 steps" in result.stdout
    for name in ("config.json", "metrics.jsonl", "curves.png", "model.keras", "best.weights.h5",
                 "last.weights.h5"):
        assert os.path.getsize(run_dir / name) > 0, name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["environment"]["backend"] == "jax" and saved["trainer"] == "Keras fit on jax"
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2]
    scalars = tensorboard_scalars(run_dir)  # the tags and steps of the tf.distribute route's
    assert sorted(scalars) == sorted(logs.SCALARS)
    assert scalars["learning_rate"] == pytest.approx({r["epoch"]: r["learning_rate"] for r in metrics(run_dir)})
    # Resume under JAX: test_the_default_under_jax_killed_and_resumed_learns_as_the_tensorflow_route (slow).
    evaluated = invoke("evaluate", run_dir, "--json")  # TensorFlow, this process
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["num_examples"] == 450


def test_distribution_options_need_tensorflow(tmp_path):
    result = jax_train("--smoke", "--strategy", "mirrored", "--run-dir", tmp_path / "run", timeout=120)
    assert result.returncode == 1
    assert "need KERAS_BACKEND=tensorflow" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_default_under_jax_killed_and_resumed_learns_as_the_tensorflow_route(tmp_path):
    run_dir = tmp_path / "run"
    args = [*CLI, "train", "--run-dir", str(run_dir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=JAX)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if (run_dir / "metrics.jsonl").exists() and len(metrics(run_dir)) >= 2:
            process.send_signal(signal.SIGKILL)  # in epoch 3 of 5
            break
        time.sleep(0.2)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    finished = subprocess.run(args, capture_output=True, text=True, env=JAX, timeout=900)
    assert finished.returncode == 0, finished.stderr[-2000:]
    steps_per_epoch = 1347 // 64
    # The uninterrupted schedule: 0.1 x0.2 at epochs 3 and 5.
    assert f"Done: {5 * steps_per_epoch} steps, final learning rate 0.004," in finished.stdout
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2, 3, 4, 5]
    evaluated = json.loads(invoke("evaluate", run_dir, "--json").stdout)
    assert 1 - evaluated["test_error"] >= 0.95  # as the README's main job on TensorFlow
    exported = invoke("export", run_dir, "--out", tmp_path / "exported", "--max-examples", "64")
    assert exported.exit_code == 0, exported.output
    assert os.path.isdir(tmp_path / "exported" / "1")
