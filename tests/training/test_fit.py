"""The Keras fit trainer: `keras-wrn train` under JAX, with the same run folder
as the tf.distribute route, read by `evaluate` and `export` like any other;
and its pieces on their own, from in-memory arrays."""

import importlib.util
import json
import os
import signal
import subprocess

import numpy as np
import pytest

from keras_wrn import data
from keras_wrn.data.feeds import ShuffledBatches
from keras_wrn.training import logs
from keras_wrn.training.config import TrainConfig
from keras_wrn.training.fit import build_fit_model
from tests.helpers import CLI, ENV, failure, invoke, kill_when, metrics, tensorboard_scalars

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
JAX = {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}


def jax_train(*args, timeout=900):
    return subprocess.run([*CLI, "train", *map(str, args)], capture_output=True, text=True, env=JAX,
                          timeout=timeout)


@needs_jax
@pytest.mark.slow
def test_a_jax_smoke_run_writes_a_run_folder_tensorflow_reads(tmp_path):
    run_dir = tmp_path / "run"
    result = jax_train("--smoke", "--run-dir", run_dir)
    assert result.returncode == 0, failure(result.stderr)
    assert "Keras fit on jax" in result.stdout and "Done: 6 steps" in result.stdout
    for name in ("config.json", "metrics.jsonl", "curves.png", "model.keras", "best.weights.h5",
                 "last.weights.h5"):
        assert os.path.getsize(run_dir / name) > 0, name
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["environment"]["backend"] == "jax" and saved["trainer"] == "keras-fit"
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["epoch-1.json", "epoch-1.weights.h5", "epoch-2.json",
                                                          "epoch-2.weights.h5"]
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2]
    scalars = tensorboard_scalars(run_dir)  # the tags and steps of the tf.distribute route's
    assert sorted(scalars) == sorted(logs.SCALARS)
    assert scalars["learning_rate"] == pytest.approx({r["epoch"]: r["learning_rate"] for r in metrics(run_dir)})
    # Resume under JAX: test_the_default_under_jax_killed_and_resumed_learns_as_the_tensorflow_route (slow).
    evaluated = invoke("evaluate", run_dir, "--json")  # TensorFlow, this process
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.stdout)["num_examples"] == 450
    # TensorFlow's trainer cannot resume these checkpoints: refused, naming the backend to use.
    refused = invoke("train", "--smoke", "--run-dir", run_dir)
    assert refused.exit_code == 1 and "checkpoints of the keras-fit trainer" in refused.output


@needs_jax
@pytest.mark.slow
def test_the_default_under_jax_killed_and_resumed_learns_as_the_tensorflow_route(tmp_path):
    run_dir = tmp_path / "run"
    args = [*CLI, "train", "--run-dir", str(run_dir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=JAX)
    # Killed in epoch 3 of 5.
    kill_when(process, lambda: (run_dir / "metrics.jsonl").exists() and len(metrics(run_dir)) >= 2, timeout=600,
              poll=0.2)
    assert process.returncode == -signal.SIGKILL
    finished = subprocess.run(args, capture_output=True, text=True, env=JAX, timeout=900)
    assert finished.returncode == 0, failure(finished.stderr)
    steps_per_epoch = 1347 // 64
    # The uninterrupted schedule: 0.1 x0.2 at epochs 3 and 5.
    assert f"Done: {5 * steps_per_epoch} steps, final learning rate 0.004," in finished.stdout
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2, 3, 4, 5]
    evaluated = json.loads(invoke("evaluate", run_dir, "--json").stdout)
    assert 1 - evaluated["test_error"] >= 0.95  # as the README's main job on TensorFlow
    exported = invoke("export", run_dir, "--out", tmp_path / "exported", "--max-examples", "64")
    assert exported.exit_code == 0, exported.output
    assert os.path.isdir(tmp_path / "exported" / "1")


def test_fit_model_trains_with_the_recipe_and_reports_the_test_figures(tmp_path):
    spec = data.get_dataset_spec("cifar10")
    config = TrainConfig.from_preset("cifar10", model="wrn-40-1", batch_size=8, epochs=2,
                                     lr_boundaries=(2,), seed=0)
    trainer, net = build_fit_model(config, spec, steps_per_epoch=2, jit_compile=False)
    assert [layer.name for layer in trainer.layers] == ["preprocess", net.name]
    assert type(trainer.optimizer).__name__ == "TorchSGD" and trainer.optimizer.nesterov
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 16).astype("int32")
    before = [w.copy() for w in net.get_weights()]
    history = trainer.fit(ShuffledBatches(images, labels, 8), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "xent", "error"}  # no top-5 under 100 classes
    assert int(trainer.optimizer.iterations) == 4
    assert float(trainer.optimizer.learning_rate) == pytest.approx(0.02)  # x0.2 when epoch 2 began
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    tested = trainer.evaluate(images, labels, batch_size=8, verbose=0, return_dict=True)
    logits = np.asarray(trainer.predict(images, verbose=0))
    assert tested["error"] == pytest.approx(np.mean(logits.argmax(1) != labels))
    # The network's weights, saved alone, load into the registered model.
    net.save_weights(str(tmp_path / "last.weights.h5"))
    from keras_wrn.models import registry

    fresh = registry.get_model("wrn-40-1", num_classes=10, classifier_activation=None)
    fresh.load_weights(str(tmp_path / "last.weights.h5"))
    for a, b in zip(fresh.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_curves_plot_runs_that_test_every_few_epochs(tmp_path):
    from keras_wrn.training.logs import plot_curves

    records = [{"epoch": e, "train_loss": 1.0 / e, **({"test_error": 0.5 / e} if e % 2 == 0 else {})}
               for e in range(1, 7)]
    plot_curves(records, str(tmp_path / "curves.png"), title="every second epoch tested")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_shortened_recipe_drops_the_rate_at_the_papers_fractions():
    from keras_wrn.training.schedules import scaled_boundaries

    assert scaled_boundaries(200) == (60, 120, 160) and scaled_boundaries(30) == (9, 18, 24)
    assert scaled_boundaries(20) == (6, 12, 16) and scaled_boundaries(2) == (2,)  # epoch 1 has no drop


def test_the_fit_route_measures_top5_for_100_classes():
    """As the tf.distribute trainer: a 100-class run's test figures carry
    the top-5 error, measured over the weighted examples as top-1 is."""
    spec = data.get_dataset_spec("cifar100")
    config = TrainConfig.from_preset("cifar100", model="wrn-16-1", batch_size=8, epochs=1, seed=0)
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=1, jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 100, 8).astype("int32")
    trainer.fit(ShuffledBatches(images, labels, 8), epochs=1, verbose=0)
    tested = trainer.evaluate(images, labels, batch_size=8, verbose=0, return_dict=True)
    logits = np.asarray(trainer.predict(images, verbose=0))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    expected = 1.0 - np.mean([label in row for label, row in zip(labels, top5)])
    assert tested["top5_error"] == pytest.approx(expected)
    assert tested["top5_error"] <= tested["error"]
