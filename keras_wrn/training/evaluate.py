"""Test error of a run folder or a saved model, in the paper's terms."""

import os

from keras_wrn.errors import InvalidArgumentError, MissingFileError
from keras_wrn.training import run_folder

WEIGHT_CHOICES = tuple(run_folder.WEIGHTS)  # final, best, last


RUN_FILE_ADVICE = ("For a run folder, `--weights last` or `best` reads another file, and running the same "
                   "`keras-wrn train` again rewrites it from the checkpoints.")


def load_file(path, model=None):
    """A `.keras` model (`model=None`) or weights loaded into `model`; a
    damaged or foreign file is one `DamagedWeightsFileError` naming it (the
    models' own error for damaged weights files)."""
    import keras

    from keras_wrn.models.weights_io import damaged

    try:
        if model is None:
            return keras.saving.load_model(path)
        model.load_weights(path)
        return model
    except Exception as error:  # h5py, zipfile and Keras raise many types for a damaged file
        raise damaged(path, error, RUN_FILE_ADVICE) from None


def resolve_model(target, weights="final"):
    """(model, TrainConfig or None) for a run folder (its final, best or last
    weights) or a `.keras` file. Run-folder models output logits."""

    from keras_wrn.models import registry
    from keras_wrn.training.config import TrainConfig

    if os.path.isdir(target):
        config_path = run_folder.path(target, run_folder.CONFIG)
        if not os.path.exists(config_path):
            raise MissingFileError(
                f"{target!r} is not a keras-wrn run folder (no config.json). Pass a run folder "
                f"written by `keras-wrn train` or a .keras model file."
            )
        config = TrainConfig.load(config_path)
        files = run_folder.WEIGHTS
        path = run_folder.path(target, files[weights])
        if not os.path.exists(path):
            raise MissingFileError(
                f"The run folder {target!r} has no {files[weights]} yet (the run has not "
                f"{'finished' if weights == 'final' else 'completed an epoch'}); try "
                f"--weights last or resume the run."
            )
        if weights == "final":
            return load_file(path), config
        from keras_wrn import data

        spec = data.get_dataset_spec(config.dataset)
        model = registry.get_model(
            config.model, num_classes=spec.num_classes,
            input_shape=(spec.image_size, spec.image_size, spec.channels),
            classifier_activation=None,
        )
        return load_file(path, model), config
    if target.endswith(".keras") and os.path.isfile(target):
        return load_file(target), None
    raise MissingFileError(
        f"Cannot evaluate {target!r}: pass a run folder written by `keras-wrn train` or a "
        f".keras model file."
    )


def check_model_fits(model, spec):
    """ValueError unless `model` takes `spec`'s images and predicts its classes."""
    expected = (spec.image_size, spec.image_size, spec.channels)
    if tuple(model.input_shape[1:]) != expected or model.output_shape[-1] != spec.num_classes:
        raise InvalidArgumentError(
            f"The model takes {tuple(model.input_shape[1:])} images and predicts "
            f"{model.output_shape[-1]} classes; {spec.name} has {expected} images and "
            f"{spec.num_classes} classes."
        )


def run_zca(run_dir, config):
    """The (mean, matrix) GCN + ZCA whitening a run trained with, or None."""
    if config is None or not config.zca:
        return None
    stored = run_folder.read_zca(run_dir)
    if stored is None:
        raise MissingFileError(f"{run_folder.path(run_dir, run_folder.ZCA)} is missing: the run trained with --zca "
                               f"and its whitening is needed to test it. Resume the run to write it again.")
    return stored


def input_normalization(model, spec):
    """The per-channel (mean, std) applied to pixels before `model`: the
    dataset's, or the identity when the model normalises its pixels itself
    (built with `include_preprocessing`, e.g. with weights from the table)."""
    if getattr(model, "include_preprocessing", False):
        return (0.0,) * spec.channels, (1.0,) * spec.channels
    return spec.normalization()


def evaluate_model(model, spec, *, data_dir=None, zca=None, batch_size=256, max_batches=None):
    """Evaluates a loaded classifier on the test split of dataset `spec`,
    its pixels normalised as `input_normalization` says (and whitened with
    `zca` when given), with the trainers' computation (`metrics.error_sums`). Returns num_examples, test_error and test_loss (and
    test_top5_error for datasets of 100+ classes), errors as fractions."""
    import keras

    from keras_wrn import data
    from keras_wrn.training.metrics import TOP5_FROM_CLASSES, error_sums

    check_model_fits(model, spec)
    test = data.load_split(spec, "test", data_dir=data_dir)
    mean, std = input_normalization(model, spec)
    preprocess = data.preprocessor(mean, std, zca=zca)
    softmax = model.layers[-1].get_config().get("activation") == "softmax"
    top5 = spec.num_classes >= TOP5_FROM_CLASSES
    totals = [0.0] * 4
    for i, (images, labels) in enumerate(data.batches(test, batch_size).as_numpy_iterator()):
        if max_batches is not None and i >= max_batches:
            break
        outputs = model(preprocess(images), training=False)
        if softmax:  # log-probabilities are logits too
            outputs = keras.ops.log(keras.ops.maximum(keras.ops.cast(outputs, "float32"), 1e-12))
        totals = [t + float(v) for t, v in zip(totals, error_sums(outputs, labels, top5=top5))]
    loss, wrong1, wrong5, count = totals
    result = {"num_examples": int(count), "test_error": wrong1 / count, "test_loss": loss / count}
    if top5:
        result["test_top5_error"] = wrong5 / count
    return result


def evaluate(target, *, dataset=None, data_dir=None, weights="final", batch_size=256, max_batches=None):
    """Evaluates a run folder (its final, best or last weights) or a `.keras`
    file on the test split of `dataset` (default: the run's dataset).

    Returns a dict: dataset, model, weights, num_examples, test_error and
    test_loss (and test_top5_error for datasets of 100+ classes), errors as
    fractions.
    """
    from keras_wrn import data

    if weights not in WEIGHT_CHOICES:
        raise InvalidArgumentError(f"weights must be one of {WEIGHT_CHOICES}. Received: weights={weights!r}")
    model, config = resolve_model(target, weights)
    dataset = dataset or (config.dataset if config else None)
    if dataset is None:
        raise InvalidArgumentError(f"Evaluating the model file {target!r} needs --dataset.")
    spec = data.get_dataset_spec(dataset)
    measured = evaluate_model(model, spec, data_dir=data_dir or (config.data_dir if config else None),
                              zca=run_zca(target, config), batch_size=batch_size, max_batches=max_batches)
    return {
        "dataset": spec.name,
        "model": config.model if config else model.name,
        "weights": weights if config else target,
        **measured,
    }
