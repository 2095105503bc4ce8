import pytest


@pytest.fixture(scope="session")
def finished_smoke_run(tmp_path_factory):
    """One finished smoke run of the digits default, as `keras-wrn train
    --smoke` runs it (one device: XLA on): checkpoints at steps 3 and 6, two
    metrics lines. Tests read it and must leave it unchanged; those that
    damage a run copy it first."""
    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.trainer import train

    run_dir = tmp_path_factory.mktemp("smoke") / "run"
    train(TrainConfig.from_preset("digits", run_dir=str(run_dir), smoke=True), verbose=False)
    assert run_folder.checkpoint_numbers(run_dir) == [6, 3]
    return run_dir
