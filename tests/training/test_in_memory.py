"""Training from in-memory arrays with Keras fit (the JAX / PyTorch route)."""

import json

import numpy as np
import pytest

from keras_wrn import data
from keras_wrn.training.config import TrainConfig
from keras_wrn.training.in_memory import EpochLog, ShuffledBatches, build_fit_model
from keras_wrn.training.schedules import epoch_step_decay


def test_shuffled_batches_are_full_and_reshuffled_every_epoch():
    images = np.arange(10)[:, None, None, None].astype("uint8")
    labels = np.arange(10, dtype="int32")
    batches = ShuffledBatches(images, labels, batch_size=4, seed=3)
    assert len(batches) == 2  # 10 // 4: the partial batch is left out
    first = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert all(batches[i][0].shape == (4, 1, 1, 1) for i in range(2))
    np.testing.assert_array_equal(batches[0][0][:, 0, 0, 0], batches[0][1])  # images stay with labels
    assert len(set(first)) == 8
    batches.on_epoch_end()
    second = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert not np.array_equal(first, second)
    again = ShuffledBatches(images, labels, batch_size=4, seed=3)
    np.testing.assert_array_equal(np.concatenate([again[i][1] for i in range(2)]), first)  # seeded
    with pytest.raises(ValueError, match="larger than the 10 examples"):
        ShuffledBatches(images, labels, batch_size=11)


def test_fit_model_trains_with_the_recipe_and_logs_epochs(tmp_path):
    spec = data.get_dataset_spec("cifar10")
    config = TrainConfig.from_preset("cifar10", model="wrn-40-1", batch_size=8, epochs=2,
                                     lr_boundaries=(2,), seed=0)
    trainer, net = build_fit_model(config, spec, steps_per_epoch=2, jit_compile=False)
    assert [layer.name for layer in trainer.layers] == ["preprocess", net.name]
    assert type(trainer.optimizer).__name__ == "TorchSGD" and trainer.optimizer.nesterov
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 16).astype("int32")
    schedule = epoch_step_decay(0.1, (2,), 0.2, 2)
    log = EpochLog(str(tmp_path / "metrics.jsonl"), 16, schedule, 2, net=net,
                   weights_path=str(tmp_path / "last.weights.h5"), save_every=1, log=lambda *a, **k: None)
    before = [w.copy() for w in net.get_weights()]
    trainer.fit(ShuffledBatches(images, labels, 8), epochs=2, verbose=0, callbacks=[log],
                validation_data=(images, labels), validation_batch_size=8, validation_freq=[2])
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [2, 4]
    assert records[0]["learning_rate"] == pytest.approx(0.1) and records[1]["learning_rate"] == pytest.approx(0.02)
    assert "test_error" not in records[0] and 0.0 <= records[1]["test_error"] <= 1.0
    assert all(r["images_per_second"] > 0 and r["train_loss"] > 0 for r in records)
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    # The saved weights are the network's, loadable into the registered model.
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
