"""Input preprocessing and output decoding for the ImageNet weights that
keras_wrn converts (torchvision's and the paper's): RGB pixels normalised by
the ImageNet mean and std, as both were trained. Models built with those
weights do this themselves unless `include_preprocessing=False`.
"""

import keras
import numpy as np

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import weights


def preprocess_input(x, data_format=None):
    """RGB pixels 0-255, `(..., H, W, 3)` (or `(..., 3, H, W)` for
    channels_first) -> float32 `(x - mean) / std` per channel with the
    ImageNet statistics (torchvision's `(x / 255 - 0.485) / 0.229`, ...),
    for a model built with `include_preprocessing=False`."""
    data_format = data_format or keras.config.image_data_format()
    x = keras.ops.cast(keras.ops.convert_to_tensor(x), "float32")
    shape = (3, 1, 1) if data_format == "channels_first" else (3,)
    mean = keras.ops.reshape(keras.ops.convert_to_tensor(weights.IMAGENET_MEAN, "float32"), shape)
    std = keras.ops.reshape(keras.ops.convert_to_tensor(weights.IMAGENET_STD, "float32"), shape)
    return (x - mean) / std


def imagenet_class_names():
    """The 1,000 ImageNet-1k class names in the order of the classifier
    (torchvision's list)."""
    return weights.class_names("imagenet-1k")


def decode_predictions(predictions, top=5):
    """`(N, 1000)` probabilities or logits -> for each image a list of `top`
    `(class index, class name, score)` tuples, best first."""
    predictions = np.asarray(keras.ops.convert_to_numpy(predictions))
    if predictions.ndim != 2 or predictions.shape[1] != 1000:
        raise InvalidArgumentError(f"decode_predictions expects a batch of 1000 ImageNet scores, shape (N, 1000). "
                         f"Received shape {predictions.shape}")
    names = imagenet_class_names()
    results = []
    for row in predictions:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(int(i), names[i], float(row[i])) for i in order])
    return results
