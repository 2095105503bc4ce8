"""The recipe options against their definitions: Keras' cosine decay with
warm-up against its formula, label smoothing against a hand computation,
Cutout and RandAugment on known inputs, the EMA against its formula, the
presets and the refusals; and (slow) runs with every option killed and
resumed against uninterrupted ones."""

import json
import math
import os
import signal
import subprocess

import keras
import numpy as np
import pytest

from keras_wrn.data import Cutout, preprocessor
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training.config import TrainConfig
from keras_wrn.training.losses import SmoothedCrossentropy, cross_entropy
from keras_wrn.training.schedules import cosine_decay, learning_rate_schedule, rate_at
from tests.helpers import CLI, ENV, failure, kill_when, metrics


@pytest.mark.parametrize("warmup", [0, 2])
def test_cosine_decay_with_warmup_follows_its_formula(warmup):
    lr, epochs, spe = 0.1, 10, 7
    schedule = cosine_decay(lr, epochs, spe, warmup)
    total, warm = epochs * spe, warmup * spe
    for step in (0, 1, 5, warm, warm + 1, total // 2, total - 1, total):
        if step < warm:
            expected = lr * step / warm
        else:
            expected = lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
        assert float(schedule(step)) == pytest.approx(expected, abs=1e-7), step
    config = TrainConfig(schedule="cosine", warmup_epochs=warmup, epochs=epochs, learning_rate=lr)
    assert rate_at(learning_rate_schedule(config, spe, epochs), total) == pytest.approx(
        lr * 0.5 * (1 + math.cos(math.pi * (total - 1 - warm) / (total - warm))), abs=1e-7)


def test_label_smoothing_matches_a_hand_computation():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], "float32")
    labels = np.array([0, 2])
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    s = 0.1
    targets = (1 - s) * np.eye(3)[labels] + s / 3
    expected = -(targets * log_p).sum(axis=1)
    np.testing.assert_allclose(np.asarray(cross_entropy(labels, logits, s)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(cross_entropy(labels, logits)), -log_p[[0, 1], labels], rtol=1e-6)
    assert float(SmoothedCrossentropy(s)(labels, logits)) == pytest.approx(expected.mean(), rel=1e-6)


def test_cutout_zeroes_one_clipped_square_per_image():
    images = np.ones((64, 12, 12, 2), "float32")
    out = np.asarray(Cutout(6, seed=3)(images, training=True))
    zero = out[..., 0] == 0
    assert (out[..., 0] == out[..., 1]).all()  # every channel
    for mask in zero:
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        # One axis-aligned box, at most 6x6, clipped at the borders.
        assert mask.sum() == len(rows) * len(cols) and 1 <= len(rows) <= 6 and 1 <= len(cols) <= 6
        assert (np.diff(rows) == 1).all() and (np.diff(cols) == 1).all()
    sizes = zero.sum(axis=(1, 2))
    assert sizes.max() == 36 and sizes.min() < 36  # whole squares inside, clipped ones at the edges
    np.testing.assert_array_equal(np.asarray(Cutout(6)(images, training=False)), images)


def test_cutout_comes_after_normalisation_and_randaugment_before():
    cutout = preprocessor((100.0,) * 3, (50.0,) * 3, flip=True, crop_padding=4, seed=0, augment="cutout")
    assert [layer.name for layer in cutout.layers] == ["normalize", "flip", "reflect_crop", "cutout"]
    randaugment = preprocessor((100.0,) * 3, (50.0,) * 3, flip=True, crop_padding=4, seed=0, augment="randaugment")
    assert [layer.name for layer in randaugment.layers] == ["randaugment", "normalize", "flip", "reflect_crop"]
    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("float32")
    augmented = np.asarray(randaugment.layers[0](images, training=True))
    assert augmented.shape == images.shape and augmented.min() >= 0 and augmented.max() <= 255
    assert np.abs(augmented - images).mean() > 1.0
    np.testing.assert_array_equal(np.asarray(randaugment.layers[0](images, training=False)), images)
    autoaugment = preprocessor((100.0,) * 3, (50.0,) * 3, flip=True, crop_padding=4, seed=0, augment="autoaugment")
    assert [layer.name for layer in autoaugment.layers] == ["flip", "reflect_crop", "autoaugment", "normalize",
                                                            "cutout"]
    with pytest.raises(InvalidArgumentError, match="augment must be one of paper, cutout, randaugment, autoaugment"):
        preprocessor((0.0,), (1.0,), augment="trivialaugment")


def test_the_ema_follows_its_formula():
    """Keras' `use_ema` in TorchSGD: the average starts at the weights after
    the first update, then `a = d * a + (1 - d) * w` after each one; the
    trainers' `ema_weights` swaps it in and back."""
    from keras_wrn.training.optimizer import TorchSGD
    from keras_wrn.training.steps import ema_weights

    decay = 0.9
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=TorchSGD(0.1, use_ema=True, ema_momentum=decay), loss="mse")
    rng = np.random.default_rng(0)
    average = None
    for _ in range(4):
        model.train_on_batch(rng.normal(size=(8, 4)), rng.normal(size=(8, 3)))
        weights = [np.asarray(w) for w in model.get_weights()]
        average = weights if average is None else [decay * a + (1 - decay) * w for a, w in zip(average, weights)]
    raw = [np.asarray(w) for w in model.get_weights()]
    with ema_weights(model, model.optimizer):
        for got, expected in zip(model.get_weights(), average):
            np.testing.assert_allclose(got, expected, rtol=1e-5)
    for got, expected in zip(model.get_weights(), raw):
        np.testing.assert_array_equal(got, expected)


def test_the_sam_recipe_and_its_overrides():
    config = TrainConfig.from_preset("cifar10", recipe="sam")
    assert (config.optimizer, config.sam_rho, config.label_smoothing, config.schedule, config.epochs,
            config.batch_size, config.learning_rate, config.weight_decay, config.augment) == \
        ("sam", 0.05, 0.1, "cosine", 200, 128, 0.1, 5e-4, "cutout")
    assert TrainConfig.from_preset("cifar10", recipe="sam", sam_rho=0.1, epochs=10).sam_rho == 0.1
    assert TrainConfig.from_preset("cifar10", recipe="asam").sam_rho == 0.5
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("overrides, message", [
    ({"recipe": "adam"}, "Unknown recipe 'adam'; recipes: paper, sam, asam"),
    ({"optimizer": "adam"}, "optimizer must be one of sgd, sam, asam"),
    ({"sam_rho": 0.1}, "sam_rho applies to --optimizer sam or asam"),
    ({"optimizer": "sam", "precision": "mixed_float16"}, "float32 or mixed_bfloat16"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\)"),
    ({"schedule": "linear"}, "schedule must be one of step, cosine"),
    ({"warmup_epochs": 1}, "Warm-up comes with --schedule cosine"),
    ({"schedule": "cosine", "warmup_epochs": 5}, r"warmup_epochs must be an integer in \[0, epochs\)"),
    ({"ema_decay": 1.0}, r"ema_decay must be in \(0, 1\)"),
    ({"augment": "trivialaugment"}, "augment must be one of paper, cutout, randaugment, autoaugment"),
])
def test_impossible_recipe_values_are_refused(overrides, message):
    with pytest.raises(InvalidArgumentError, match=message):
        TrainConfig.from_preset("digits", **overrides)


def test_a_cosine_run_is_not_extended(tmp_path):
    from keras_wrn.training import run_folder
    from keras_wrn.training.session import RunSession

    run_dir = str(tmp_path / "run")
    config = TrainConfig.from_preset("digits", run_dir=run_dir, schedule="cosine")
    os.makedirs(run_dir)
    run_folder.write_json(os.path.join(run_dir, "config.json"), {"config": config.to_dict()})
    longer = TrainConfig.from_preset("digits", run_dir=run_dir, schedule="cosine", epochs=8)
    from keras_wrn import data

    with RunSession(longer, data.get_dataset_spec("digits"), trainer="tf.distribute") as session:
        with pytest.raises(run_folder.RunFolderError, match="cosine schedule, which reaches 0 at its last epoch"):
            session.open(run_folder.CHECKPOINT_PATTERNS["tf.distribute"])


def run(args, env):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=900)


def weights_of(path):
    import h5py

    values = []
    with h5py.File(path) as handle:
        handle.visititems(lambda name, item: values.append(item[()]) if isinstance(item, h5py.Dataset) else None)
    return values


RECIPE = ["train", "--model", "wrn-16-1", "--recipe", "sam", "--epochs", "3", "--batch-size", "128", "--ema", "0.9",
          "--label-smoothing", "0.1", "--warmup-epochs", "1", "--augment", "autoaugment"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_killed_sam_ema_run_resumes_as_an_uninterrupted_one(backend, tmp_path):
    """Every recipe option at once (SAM, cosine with warm-up, label
    smoothing, AutoAugment and Cutout, EMA), killed after its first epoch and started again
    (TensorFlow: from a mid-epoch checkpoint; JAX: from the epoch's end): the
    same steps, rates, raw and EMA test errors and EMA weights as an
    uninterrupted run (the augmentation's random state is checkpointed too)."""
    if backend == "jax":
        pytest.importorskip("jax")
    env = {**ENV, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    extra = ["--checkpoint-steps", "4", "--no-xla"] if backend == "tensorflow" else ["--no-xla"]
    finished = run([*RECIPE, *extra, "--run-dir", str(plain)], env)
    assert finished.returncode == 0, failure(finished.stderr)
    process = subprocess.Popen([*CLI, *RECIPE, *extra, "--run-dir", str(killed)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env=env)
    kill_when(process, lambda: (killed / "metrics.jsonl").exists() and len(metrics(killed)) >= 1, timeout=600)
    assert process.returncode == -signal.SIGKILL
    resumed = run([*RECIPE, *extra, "--run-dir", str(killed)], env)
    assert resumed.returncode == 0, failure(resumed.stderr)
    assert "Resuming" in resumed.stdout
    ours, theirs = metrics(killed), metrics(plain)
    for key in ("epoch", "step", "learning_rate"):
        assert [r[key] for r in ours] == [r[key] for r in theirs]
    assert all(r.get("ema_test_error") is not None for r in ours)
    for key in ("test_error", "ema_test_error"):
        np.testing.assert_allclose([r[key] for r in ours], [r[key] for r in theirs], atol=1e-6)
    for a, b in zip(weights_of(killed / "ema.weights.h5"), weights_of(plain / "ema.weights.h5")):
        np.testing.assert_allclose(a, b, atol=1e-5)
    saved = json.load(open(killed / "config.json"))["config"]
    assert (saved["optimizer"], saved["ema_decay"], saved["augment"]) == ("sam", 0.9, "autoaugment")


@pytest.mark.slow
def test_the_fit_checkpoint_keeps_the_ema(tmp_path):
    """The fit route's epoch checkpoint (`save_weights` of the trainer model)
    holds the optimizer's moving average: a new trainer loading it swaps in
    the same EMA weights."""
    from keras_wrn import data
    from keras_wrn.training.fit import build_fit_model
    from keras_wrn.training.steps import ema_weights

    config = TrainConfig.from_preset("digits", model="wrn-16-1", ema_decay=0.9, optimizer="sam", smoke=True)
    spec = data.get_dataset_spec("digits")
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=2, jit_compile=False)
    rng = np.random.default_rng(0)
    trainer.fit(rng.integers(0, 256, (8, 8, 8, 1)), rng.integers(0, 10, 8), batch_size=4, verbose=0)
    path = str(tmp_path / "epoch-1.weights.h5")
    trainer.save_weights(path)
    with ema_weights(trainer, trainer.optimizer):
        expected = [np.asarray(w) for w in trainer.get_weights()]
    fresh, _ = build_fit_model(config, spec, steps_per_epoch=2, jit_compile=False)
    fresh.load_weights(path)
    assert int(fresh.optimizer.iterations) == 2
    with ema_weights(fresh, fresh.optimizer):
        for got, want in zip(fresh.get_weights(), expected):
            np.testing.assert_array_equal(np.asarray(got), want)


JPEG_CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "cifar10-jpeg.tar.gz")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(JPEG_CIFAR), reason="needs ../shared/data/cifar10-jpeg.tar.gz")
def test_the_sam_recipe_on_the_jpeg_copy_of_cifar10(tmp_path):
    """The SAM preset with an EMA on real CIFAR-10 images, one epoch of a
    WRN-16-1 on this CPU: both test errors written, both well below chance."""
    run_dir = tmp_path / "sam"
    result = run(["train", "--dataset", "cifar10", "--data-dir", JPEG_CIFAR, "--recipe", "sam", "--ema", "0.99",
                  "--model", "wrn-16-1", "--epochs", "1", "--run-dir", str(run_dir)], ENV)
    assert result.returncode == 0, failure(result.stderr)
    (record,) = metrics(run_dir)
    assert record["test_error"] < 0.8 and record["ema_test_error"] < 0.8, record
    assert "(EMA " in result.stdout and (run_dir / "ema.weights.h5").exists()
