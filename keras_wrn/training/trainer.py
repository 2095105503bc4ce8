"""`keras-wrn train` in one function: the trainer for the Keras backend.

    TensorFlow   distributed.DistributedTrainer  tf.distribute loop: one device, mirrored, multi-worker, TPU
    JAX, PyTorch fit.FitTrainer                  Keras fit

Both run the same skeleton (`session`), write the same run folder
(`run_folder`) and train the same recipe (`steps.build_training_objects`).
"""

from keras_wrn.training.session import TrainResult, check_model_and_data

__all__ = ["TRAINERS", "TrainResult", "train"]

# Keras backend -> "module.Class" of its trainer (imported when used).
TRAINERS = {
    "tensorflow": "distributed.DistributedTrainer",
    "jax": "fit.FitTrainer",
    "torch": "fit.FitTrainer",
}


def trainer_class(backend):
    import importlib

    module, name = TRAINERS[backend].rsplit(".", 1)
    return getattr(importlib.import_module(f"keras_wrn.training.{module}"), name)


def train(config, *, verbose=True, stop_when=None):
    """Runs (or resumes, or trains longer) the run described by `config`
    with the trainer of the current Keras backend; returns a `TrainResult`.

    `stop_when()`, asked after each epoch's files, ends the run there when
    true (a time budget); the run stays resumable.

    Raises `InvalidArgumentError` subclasses for bad input (a bad value,
    unknown dataset or model, a batch size the replicas cannot share, a run
    folder of another run) and `DataNotFoundError` for missing data, before
    anything is written.
    """
    import keras

    from keras_wrn import data

    config = config.resolved()
    spec = data.get_dataset_spec(config.dataset)
    check_model_and_data(config, spec)
    return trainer_class(keras.backend.backend())(config, spec, verbose=verbose, stop_when=stop_when).run()
