"""Input preprocessing and output decoding for the ImageNet weights that
keras_wrn converts (torchvision's and the paper's): RGB pixels scaled to
[0, 1], then normalised by the ImageNet mean and std, as both were trained.
"""

import functools
import json
from importlib import resources

import keras
import numpy as np

from keras_wrn.models.errors import InvalidArgumentError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_input(x, data_format=None):
    """RGB pixels 0-255, `(..., H, W, 3)` (or `(..., 3, H, W)` for
    channels_first) -> float32 `(x / 255 - mean) / std` per channel."""
    data_format = data_format or keras.config.image_data_format()
    x = keras.ops.cast(keras.ops.convert_to_tensor(x), "float32") / 255.0
    shape = (3, 1, 1) if data_format == "channels_first" else (3,)
    mean = keras.ops.reshape(keras.ops.convert_to_tensor(IMAGENET_MEAN, "float32"), shape)
    std = keras.ops.reshape(keras.ops.convert_to_tensor(IMAGENET_STD, "float32"), shape)
    return (x - mean) / std


@functools.cache
def imagenet_class_names():
    """The 1,000 ImageNet-1k class names in the order of the classifier
    (torchvision's list)."""
    text = resources.files("keras_wrn.models").joinpath("imagenet_classes.json").read_text()
    return tuple(json.loads(text))


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
