import os

import numpy as np
import pytest

from tests.helpers import built_once, digits_arrays


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory):
    """A WRN-10-2 fitted for a few epochs on the digits (about 90% right),
    saved as a logits `.keras` file: a real classifier in seconds, built
    once for all workers."""

    def fit(folder):
        import keras

        from keras_wrn import WideResNet

        keras.utils.set_random_seed(0)
        images, labels = digits_arrays("train")
        model = WideResNet(depth=10, k=2, num_classes=10, input_shape=(8, 8, 1), classifier_activation=None)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(images / 255.0, labels, batch_size=64, epochs=4, verbose=0)
        model.save(str(folder / "wrn-10-2.keras"))

    return str(built_once(tmp_path_factory, "tiny", fit) / "wrn-10-2.keras")


@pytest.fixture(scope="session")
def tiny_keras_probabilities(tiny_keras):
    """The Keras model's probabilities on the digits test images."""
    import keras

    images, labels = digits_arrays("test")
    model = keras.saving.load_model(tiny_keras)
    logits = keras.ops.convert_to_numpy(model(images.astype("float32") / 255.0, training=False))
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    return probabilities / probabilities.sum(1, keepdims=True), labels


@pytest.fixture(scope="session")
def tiny_export(tiny_keras, tmp_path_factory):
    """The tiny model exported once (for all workers) as SavedModel
    (version 1) and every TFLite variant, into one folder that tests read
    and leave unchanged."""

    def export(folder):
        from keras_wrn.export import QUANTIZATIONS, export_savedmodel, export_tflite, load_source

        out = str(folder / "digits-tiny")
        source = load_source(tiny_keras, dataset="digits")
        export_savedmodel(tiny_keras, out, source=source, verbose=False)
        for quantize in QUANTIZATIONS:
            export_tflite(tiny_keras, out, quantize=quantize, source=source, verbose=False)

    out = str(built_once(tmp_path_factory, "exported", export) / "digits-tiny")
    assert sorted(os.listdir(out)) == sorted(
        ["1", "MODEL_CARD.md", "model_card.json", "model.tflite", "model_float16.tflite",
         "model_dynamic.tflite", "model_int8.tflite"])
    return out
