"""What an export starts from: a trained model with everything needed to
serve it (the dataset's preprocessing, class names, test images).

Deployment formats take raw pixels, so the serving model is the trained
network with its input normalisation (mean/std, or the run's GCN + ZCA
whitening) in front and a softmax behind:

    images (N, H, W, C) float32 pixels 0-255 -> probabilities (N, classes)
"""

import dataclasses
import os

from keras_wrn.errors import InvalidArgumentError

# What a full disk during an export tells the user (`files.atomic_path`'s advice).
EXPORT_FULL_DISK = ("Free some space there and run the export again; nothing new was published (earlier versions "
                    "and files are unchanged).")


class ExportError(InvalidArgumentError):
    """An export cannot be made as asked; the message says why and what to do."""


@dataclasses.dataclass
class ExportSource:
    """A trained model ready to export. `model` outputs logits or
    probabilities; `serving_model()` wraps it for raw pixels."""

    model: object
    model_name: str
    dataset: object  # keras_wrn.data.DatasetSpec
    data_dir: str | None
    mean: tuple
    std: tuple
    zca: tuple | None
    target: str
    weights: str
    run_config: object | None = None

    @property
    def image_shape(self):
        return (self.dataset.image_size, self.dataset.image_size, self.dataset.channels)

    def serving_model(self):
        """A Keras model: float32 pixels `(N, H, W, C)` on the 0-255 scale ->
        float32 class probabilities `(N, num_classes)`."""
        return serving_model(self.model, self.mean, self.std, zca=self.zca)

    def test_split(self):
        from keras_wrn import data

        return data.load_split(self.dataset, "test", data_dir=self.data_dir)

    def test_arrays(self, max_examples=None):
        """(uint8 images, int labels, class names) of the test split, the
        first `max_examples` of it when given."""
        return load_test_arrays(self.dataset, self.data_dir, max_examples)

    def train_images(self, count, seed=0):
        """`count` training images (uint8), shuffled with `seed`: the
        representative dataset of full-integer quantisation."""
        import numpy as np

        from keras_wrn import data

        split = data.load_split(self.dataset, "train", data_dir=self.data_dir)
        source = split.source.shuffle(min(split.num_examples, 10 * count), seed=seed).take(count)
        return np.stack([x for x, _ in source.as_numpy_iterator()])


def serving_model(model, mean, std, zca=None):
    """`model` (logits or softmax) behind its input normalisation (or GCN +
    ZCA whitening) and ahead of a softmax: float32 pixels `(N, H, W, C)` on
    the 0-255 scale -> float32 probabilities `(N, num_classes)`."""
    import keras

    from keras_wrn.data import preprocessor

    images = keras.Input(tuple(model.input_shape[1:]), dtype="float32", name="images")
    outputs = model(preprocessor(mean, std, zca=zca)(images), training=False)
    if model.layers[-1].get_config().get("activation") != "softmax":
        outputs = keras.layers.Softmax(name="probabilities", dtype="float32")(outputs)
    return keras.Model(images, outputs, name=f"{model.name}_serving")


def load_test_arrays(spec, data_dir=None, max_examples=None):
    """(uint8 images, int labels, class names) of the test split of dataset
    `spec`, in order; the first `max_examples` of it when given."""
    import numpy as np

    from keras_wrn import data

    split = data.load_split(spec, "test", data_dir=data_dir)
    source = split.source if max_examples is None else split.source.take(max_examples)
    images, labels = [], []
    for x, y in source.batch(1024).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    return np.concatenate(images), np.concatenate(labels), list(split.class_names)


def probabilities(serving, images, batch_size=256):
    """The serving model's float32 probabilities for uint8 or float pixels,
    in eager batches (no retracing per call, unlike `predict`)."""
    import keras
    import numpy as np

    return np.concatenate([
        keras.ops.convert_to_numpy(serving(images[i:i + batch_size].astype("float32"), training=False))
        for i in range(0, len(images), batch_size)
    ])


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def require_tensorflow_backend(what):
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"{what} needs the TensorFlow backend (KERAS_BACKEND={keras.backend.backend()} is "
            f"set): SavedModels written under other backends do not convert to TFLite. Run "
            f"with KERAS_BACKEND=tensorflow; a .keras file saved under any backend loads there."
        )


def load_source(target, *, dataset=None, data_dir=None, weights="final"):
    """An `ExportSource` for a run folder written by `keras-wrn train` (its
    final, best or last weights, with the run's dataset, normalisation and
    whitening) or for a `.keras` classifier of `dataset` (mean/std
    normalisation of that dataset)."""
    from keras_wrn import data
    from keras_wrn.training.evaluate import check_model_fits, input_normalization, resolve_model, run_zca

    model, config = resolve_model(target, weights)
    if config is not None:
        dataset = dataset or config.dataset
        data_dir = data_dir or config.data_dir
        if dataset != config.dataset:
            raise ExportError(
                f"The run {target!r} was trained on {config.dataset!r}, not {dataset!r}; leave "
                f"out --dataset to export it with its own dataset."
            )
    elif dataset is None:
        raise ExportError(
            f"Exporting the model file {target!r} needs --dataset: its normalisation, class "
            f"names and test images come from there. Or export the run folder that wrote it."
        )
    spec = data.get_dataset_spec(dataset)
    try:
        check_model_fits(model, spec)
    except ValueError as error:
        raise ExportError(str(error)) from None
    mean, std = input_normalization(model, spec)
    return ExportSource(
        model=model,
        model_name=config.model if config else model.name,
        dataset=spec,
        data_dir=data_dir,
        mean=tuple(mean),
        std=tuple(std),
        zca=run_zca(target, config),
        target=os.path.abspath(target),
        weights=weights if config else "file",
        run_config=config,
    )
