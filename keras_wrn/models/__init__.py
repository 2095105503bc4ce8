"""Pure Keras 3 model code: never imports TensorFlow, data, training or export.

The names below are imported on first use, so that `keras_wrn.models.registry`
(names, parameter counts, the paper's errors) reads without Keras.
"""

import importlib

_PUBLIC = {
    "WideResNet": "cifar",
    "count_macs": "complexity",
    "count_params": "complexity",
    "ImageNetWideResNet": "imagenet",
    "WideResNet18": "imagenet",
    "WideResNet34": "imagenet",
    "WideResNet50_2": "imagenet",
    "WideResNet101_2": "imagenet",
    "decode_predictions": "imagenet_utils",
    "imagenet_class_names": "imagenet_utils",
    "preprocess_input": "imagenet_utils",
    "StochasticDepth": "layers",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'keras_wrn.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"keras_wrn.models.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value
