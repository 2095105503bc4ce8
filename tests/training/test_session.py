"""The loop both trainers run (`training.controller`, `training.session`): a finished run
trained longer, another run's folder refused, the caller's dtype policy
given back; and the one epoch record and best-weights rule (`records`)."""

import json
import os

import pytest

pytest.importorskip("tensorflow")

from keras_wrn import data  # noqa: E402
from keras_wrn.training import records  # noqa: E402
from keras_wrn.training.config import TrainConfig  # noqa: E402
from tests.helpers import metrics  # noqa: E402


def short_run(run_dir, epochs):
    """The digits with 3 steps an epoch (batch 337 of 1,347), the rate x0.2
    when epoch 2 begins, without XLA."""
    return TrainConfig.from_preset("digits", run_dir=str(run_dir), epochs=epochs, batch_size=337,
                                   lr_boundaries=(2,), xla=False)


def run_with(trainer, config):
    from keras_wrn.training.controller import Controller
    from keras_wrn.training.distributed import DistributedTrainer
    from keras_wrn.training.fit import FitTrainer

    trainer_class = {"tf.distribute": DistributedTrainer, "keras-fit": FitTrainer}[trainer]
    return Controller(trainer_class(config, data.get_dataset_spec("digits"), verbose=False)).run()


@pytest.mark.parametrize("trainer", ["tf.distribute", pytest.param("keras-fit", marks=pytest.mark.slow)])
def test_a_finished_run_is_trained_longer_when_only_its_epochs_grow(tmp_path, trainer):
    run_dir = tmp_path / "run"
    first = run_with(trainer, short_run(run_dir, 1))
    assert (first.steps, first.learning_rate) == (3, pytest.approx(0.1))
    # A kill after epoch 1's checkpoint, before its files: the checkpoint brings its line back.
    line = (run_dir / "metrics.jsonl").read_text()
    (run_dir / "metrics.jsonl").write_text("")
    longer = run_with(trainer, short_run(run_dir, 2))
    assert (run_dir / "metrics.jsonl").read_text().startswith(line)
    assert longer.resumed_from_step == 3 and longer.steps == 6 and longer.epochs == 2
    assert longer.learning_rate == pytest.approx(0.02)  # the schedule's rate at epoch 2
    lines = metrics(run_dir)
    assert [r["epoch"] for r in lines] == [1, 2] and [r["step"] for r in lines] == [3, 6]
    assert [r["learning_rate"] for r in lines] == pytest.approx([0.1, 0.02])
    assert not any(r.get("redone") for r in lines)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["epochs"] == 2 and saved["trainer"] == trainer
    assert [(e["epochs_before"], e["epochs"]) for e in saved["extensions"]] == [(1, 2)]
    # Shorter is another run: refused, and nothing in the folder changes.
    before = {name: (run_dir / name).stat().st_mtime_ns for name in ("config.json", "metrics.jsonl")}
    with pytest.raises(ValueError, match=r"belongs to another run: epochs=2 \(now 1; a run can be trained longer"):
        run_with(trainer, short_run(run_dir, 1))
    assert {name: (run_dir / name).stat().st_mtime_ns for name in before} == before


def test_the_callers_dtype_policy_is_given_back(tmp_path):
    import keras

    from keras_wrn.training.trainer import train

    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        train(TrainConfig.from_preset("digits", run_dir=str(tmp_path / "run"), smoke=True, xla=False),
              verbose=False)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")


def test_the_best_weights_rule_is_strictly_below_every_earlier_line():
    lines = [{"epoch": 1, "test_error": 0.3}, {"epoch": 2}, {"epoch": 3, "test_error": 0.2},
             {"unreadable": "garbage"}]
    assert records.best_test_error(lines) == 0.2 and records.best_test_error([]) == float("inf")
    assert records.improves(0.19, lines) and not records.improves(0.2, lines)  # the first of equals stays
    assert not records.improves(None, lines) and records.improves(1.0, [])


def test_an_epoch_record_writes_only_what_was_measured():
    record = records.EpochRecord(epoch=2, step=6, learning_rate=0.1, train_loss=1.5, train_error=0.5,
                                 epoch_seconds=1.0, images_per_second=6.0)
    assert list(record.to_dict()) == ["epoch", "step", "learning_rate", "train_loss", "train_error",
                                      "epoch_seconds", "images_per_second", "resumed_mid_epoch"]
    record.test_error, record.redone = 0.25, True
    assert record.to_dict()["test_error"] == 0.25 and record.to_dict()["redone"] is True
    assert record.summary(3) == "epoch 2/3: train loss 1.5000, test error 25.00%, 1.0 s, 6 img/s"
    assert records.EpochRecord(**record.to_dict()) == record  # the checkpoint's copy reads back


def test_a_run_folder_is_refused_under_another_trainer(tmp_path):
    """Checkpoints of the Keras fit trainer (JAX, PyTorch) cannot resume in
    the tf.distribute loop, nor the other way round."""
    from keras_wrn.training import run_folder

    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "epoch-1.weights.h5").write_bytes(b"")
    with pytest.raises(run_folder.RunFolderError, match="checkpoints of the keras-fit trainer"):
        run_with("tf.distribute", short_run(tmp_path / "run", 1))
    assert sorted(os.listdir(tmp_path / "run")) == [".lock", "checkpoints"]  # nothing written


def test_the_run_plan_is_one_for_every_trainer():
    """The shape of a run from its config, the replicas and the split:
    smoke runs, the paper's, and the refusals before anything is read."""
    import pytest

    from keras_wrn.errors import InvalidArgumentError
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.session import RunPlan

    config = TrainConfig.from_preset("digits", batch_size=64, epochs=5)
    assert RunPlan.of(config, 2, 1347) == RunPlan(64, 21, 5, None) and RunPlan.of(config, 2, 1347).steps == 105
    smoke = TrainConfig.from_preset("digits", smoke=True)
    assert RunPlan.of(smoke, 4, 1347) == RunPlan(8, 3, 2, 24)
    with pytest.raises(InvalidArgumentError, match="cannot be split evenly over 3 devices"):
        RunPlan.global_batch(config, 3, "devices")
    with pytest.raises(InvalidArgumentError, match="larger than the 50 training examples of digits"):
        RunPlan.of(config, 1, 50)
