"""Presets are the paper's recipes; configs validate and round-trip."""

import pytest

from keras_wrn import files
from keras_wrn.training.config import TrainConfig


def test_cifar_preset_is_the_official_recipe():
    config = TrainConfig.from_preset("cifar100")
    assert (config.model, config.epochs, config.batch_size, config.learning_rate) == ("wrn-28-10", 200, 128, 0.1)
    assert config.lr_boundaries == (60, 120, 160) and config.lr_factor == 0.2
    assert (config.momentum, config.nesterov, config.weight_decay) == (0.9, True, 5e-4)


def test_svhn_preset():
    config = TrainConfig.from_preset("svhn")
    assert (config.model, config.epochs, config.learning_rate, config.dropout_rate) == ("wrn-16-8", 160, 0.01, 0.4)
    assert config.lr_boundaries == (80, 120) and config.lr_factor == 0.1


def test_overrides_and_run_folder_name():
    config = TrainConfig.from_preset("svhn", model="wrn-16-4", epochs=3, seed=None)
    assert (config.model, config.epochs, config.seed) == ("wrn-16-4", 3, 0)
    assert config.run_dir.endswith("svhn-wrn-16-4")


def test_round_trip(tmp_path):
    config = TrainConfig.from_preset("digits", run_dir=str(tmp_path / "run"))
    files.write_json(tmp_path / "config.json", {"config": config.to_dict(), "environment": {}})
    assert TrainConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize("field, value, message", [
    ("strategy", "horovod", "strategy must be one of"),
    ("precision", "float8", "precision must be one of"),
    ("epochs", 0, "epochs must be >= 1"),
])
def test_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_preset("digits", **{field: value})


def test_validate_changes_nothing_and_resolved_gives_the_canonical_config():
    config = TrainConfig(model=" WRN-16-4", lr_boundaries=[3, 5])
    config.validate()
    assert config.model == " WRN-16-4" and config.lr_boundaries == [3, 5]  # frozen: validate only checks
    resolved = config.resolved()
    assert resolved.model == "wrn-16-4" and resolved.lr_boundaries == (3, 5)
    with pytest.raises(ValueError, match="lr_boundaries must be increasing"):
        TrainConfig(lr_boundaries=(5, 3)).validate()
