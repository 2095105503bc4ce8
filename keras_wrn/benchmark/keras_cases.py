"""keras-wrn's side of the benchmark: the trainer's own training step, the
Keras model's inference, the exported SavedModel and the TFLite variants,
each as a callable that runs one synchronous call."""

import tempfile


def _dataset_spec(model_name):
    from keras_wrn import data
    from keras_wrn.models import registry

    spec = registry.get_model_spec(model_name)
    return data.get_dataset_spec("cifar10" if spec.family == "cifar" else "imagenet")


def random_images(batch_size, image_size, channels=3, seed=0):
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (batch_size, image_size, image_size, channels), "uint8")


def configure_threads(inter_op=None):
    """TensorFlow's inter-op thread pool (before TensorFlow runs anything);
    None keeps TensorFlow's choice (one thread per core)."""
    if inter_op is None:
        return
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(inter_op)


def _training_config(model_name, batch_size, precision, seed, **overrides):
    from keras_wrn.training.config import TrainConfig

    return TrainConfig.from_preset(_dataset_spec(model_name).name, model=model_name, batch_size=batch_size,
                                   precision=precision, seed=seed, **overrides)


def training_step(model_name, batch_size, *, xla=True, precision="float32", input_pipeline=False, seed=0):
    """One optimiser step of `keras_wrn.training` (the trainer's step: the
    paper's augmentation in the step, TorchSGD, the trainer's strategy) on
    random CIFAR-sized data; with `input_pipeline`, batches come through
    `keras_wrn.data.batches` (shuffle, batch, prefetch) instead of memory."""
    import numpy as np
    import tensorflow as tf

    from keras_wrn import data
    from keras_wrn.data.datasets import Split
    from keras_wrn.training.steps import build_training_objects, make_train_step
    from keras_wrn.training.strategies import make_strategy

    spec = _dataset_spec(model_name)
    config = _training_config(model_name, batch_size, precision, seed, xla=xla)
    strategy = make_strategy("auto")
    model, preprocess, optimizer, _ = build_training_objects(config, spec, strategy, steps_per_epoch=1000)
    step = make_train_step(strategy, model, preprocess, optimizer, global_batch_size=batch_size,
                           precision=precision, xla=xla)
    size = spec.image_size
    images = random_images(batch_size * (8 if input_pipeline else 1), size, spec.channels, seed)
    labels = np.random.default_rng(seed).integers(0, spec.num_classes, len(images)).astype("int32")
    if input_pipeline:
        split = Split(spec, tf.data.Dataset.from_tensor_slices((images, labels)), len(labels), [], True)
        iterator = iter(data.batches(split, batch_size, seed=seed).repeat())

        def run():
            batch_images, batch_labels = next(iterator)
            return float(step(batch_images, batch_labels)[0])
    else:
        batch_images, batch_labels = tf.constant(images), tf.constant(labels)

        def run():
            return float(step(batch_images, batch_labels)[0])

    return run


def fit_step(model_name, batch_size, *, precision="float32", seed=0):
    """One `train_on_batch` of `keras_wrn.training.fit`'s model (the
    route for any Keras backend: JAX, PyTorch or TensorFlow; augmentation,
    TorchSGD, XLA-compiled where the backend compiles)."""
    import numpy as np

    from keras_wrn.training.fit import build_fit_model

    spec = _dataset_spec(model_name)
    config = _training_config(model_name, batch_size, precision, seed)
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=1000)
    images = random_images(batch_size, spec.image_size, spec.channels, seed)
    labels = np.random.default_rng(seed).integers(0, spec.num_classes, batch_size).astype("int32")

    def run():
        return float(trainer.train_on_batch(images, labels, return_dict=True)["loss"])

    return run


def fit_cases(model_name, batch_size, *, precision="mixed_bfloat16", steps=100, seed=0):
    """`(train, infer)`: one `fit` call of `steps` steps of the Keras fit
    trainer's compiled model from host memory (as `keras-wrn train` runs
    under JAX on a GPU: augmentation, TorchSGD, XLA), and `steps` calls of
    the network's `predict_on_batch`; `batch_size * steps` images each. The
    GPU kit's speed job times these."""
    import numpy as np

    from keras_wrn.data.feeds import ShuffledBatches
    from keras_wrn.training.fit import build_fit_model

    spec = _dataset_spec(model_name)
    config = _training_config(model_name, batch_size, precision, seed, xla=True)
    trainer, net = build_fit_model(config, spec, steps_per_epoch=1000)
    images = random_images(batch_size * steps, spec.image_size, spec.channels, seed)
    labels = np.random.default_rng(seed).integers(0, spec.num_classes, len(images)).astype("int32")
    batches = ShuffledBatches(images, labels, batch_size)
    mean, std = spec.normalization()
    batch = (images[:batch_size].astype("float32") - np.array(mean, "float32")) / np.array(std, "float32")

    def train():
        history = trainer.fit(batches, epochs=1, verbose=0)
        float(history.history["loss"][-1])  # the steps have finished

    def infer():
        for _ in range(steps):
            out = net.predict_on_batch(batch)
        np.asarray(out)

    return train, infer


def model_step(model_name, batch_size, *, data_format="channels_last", xla=True, seed=0):
    """The trainer's step (`training.steps.make_train_step`, TorchSGD) with
    the network built in `data_format` and normalisation only in front (no
    augmentation, which works on channels_last images), then a transpose
    for channels_first: compares tensor layouts with all else equal. Sets
    Keras' global image data format, so it belongs in a process of its own
    (the settings sweep's worker)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_wrn import data
    from keras_wrn.models import registry
    from keras_wrn.training.optimizer import TorchSGD
    from keras_wrn.training.steps import make_train_step
    from keras_wrn.training.strategies import make_strategy

    keras.config.set_image_data_format(data_format)
    keras.utils.set_random_seed(seed)
    spec = _dataset_spec(model_name)
    size, channels = spec.image_size, spec.channels
    first = data_format == "channels_first"
    model = registry.get_model(model_name, num_classes=spec.num_classes, classifier_activation=None,
                               input_shape=(channels, size, size) if first else (size, size, channels))
    preprocess = data.preprocessor(*spec.normalization())
    if first:
        preprocess.add(keras.layers.Permute((3, 1, 2), name="to_channels_first"))
    optimizer = TorchSGD(0.1, momentum=0.9, nesterov=True, l2_weight_decay=5e-4)
    optimizer.build(model.trainable_variables)
    strategy = make_strategy("one-device")
    step = make_train_step(strategy, model, preprocess, optimizer, global_batch_size=batch_size, xla=xla)
    images = tf.constant(random_images(batch_size, size, channels, seed))
    labels = tf.constant(np.random.default_rng(seed).integers(0, spec.num_classes, batch_size).astype("int32"))

    def run():
        return float(step(images, labels)[0])

    return run


def serving_model(model_name, *, seed=0):
    """The registered model with the CIFAR normalisation in front and a
    softmax behind, built as `keras-wrn export` serves it."""
    import keras

    from keras_wrn.export.source import serving_model as wrap
    from keras_wrn.models import registry

    keras.utils.set_random_seed(seed)
    spec = _dataset_spec(model_name)
    model = registry.get_model(model_name, num_classes=spec.num_classes, classifier_activation=None)
    return wrap(model, *spec.normalization())


def inference_step(model_name, batch_size, *, xla=True, seed=0):
    """The Keras model's forward pass (normalisation and softmax included)
    in a tf.function, as serving runs it."""
    import tensorflow as tf

    serving = serving_model(model_name, seed=seed)
    size = serving.input_shape[1]
    images = tf.constant(random_images(batch_size, size, seed=seed).astype("float32"))
    function = tf.function(lambda x: serving(x, training=False), jit_compile=xla or None)

    def run():
        return function(images).numpy()

    return run


def savedmodel_step(model_name, batch_size, *, folder=None, seed=0):
    """`serving_default` of the model exported as `keras-wrn export` writes it."""
    import tensorflow as tf

    from keras_wrn.export.savedmodel import write_savedmodel

    serving = serving_model(model_name, seed=seed)
    size = serving.input_shape[1]
    folder = folder or tempfile.mkdtemp(prefix="keras-wrn-bench-")
    write_savedmodel(serving, folder, {"serving_default": (
        lambda images: {"probabilities": serving(images, training=False)},
        [tf.TensorSpec([None, size, size, 3], tf.float32, name="images")])})
    function = tf.saved_model.load(folder).signatures["serving_default"]
    images = tf.constant(random_images(batch_size, size, seed=seed).astype("float32"))

    def run():
        return function(images=images)["probabilities"].numpy()

    return run


def tflite_step(model_name, batch_size, quantize, *, threads=None, seed=0):
    """A TFLite variant of the served model in the LiteRT interpreter."""
    import os

    from keras_wrn.export.tflite import TFLiteModel, convert

    serving = serving_model(model_name, seed=seed)
    size = serving.input_shape[1]
    representative = random_images(64, size, seed=seed + 1) if quantize == "int8" else None
    handle, path = tempfile.mkstemp(suffix=".tflite")
    with os.fdopen(handle, "wb") as stream:
        stream.write(convert(serving, quantize, representative))
    model = TFLiteModel(path, num_threads=threads)
    images = random_images(batch_size, size, seed=seed).astype("float32")

    def run():
        return model(images, batch_size=batch_size)

    return run
