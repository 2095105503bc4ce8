"""`keras-wrn train` in one function: the controller (`controller`) with the
trainer of the Keras backend.

    TensorFlow   distributed.DistributedTrainer  tf.distribute loop: one device, mirrored, multi-worker, TPU
    JAX, PyTorch fit.FitTrainer                  Keras fit

Both supply their steps, data feed and checkpoint store to the same loop,
write the same run folder (`session`, `run_folder`) and train the same
recipe (`steps.build_training_objects`).
"""

from keras_wrn.training.session import TrainResult, check_model_and_data

__all__ = ["TRAINERS", "TrainResult", "train"]


def _tf_distribute():
    from keras_wrn.training.distributed import DistributedTrainer

    return DistributedTrainer


def _keras_fit():
    from keras_wrn.training.fit import FitTrainer

    return FitTrainer


# Keras backend -> its trainer class, imported when asked for (TensorFlow
# enters only under its backend).
TRAINERS = {"tensorflow": _tf_distribute, "jax": _keras_fit, "torch": _keras_fit}


def trainer_class(backend):
    return TRAINERS[backend]()


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
    from keras_wrn.training.controller import Controller

    config = config.resolved()
    spec = data.get_dataset_spec(config.dataset)
    check_model_and_data(config, spec)
    trainer = trainer_class(keras.backend.backend())(config, spec, verbose=verbose)
    return Controller(trainer, stop_when=stop_when).run()
