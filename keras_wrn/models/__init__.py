"""Pure Keras 3 model code: never imports TensorFlow, data, training or
export; nothing of ours outside `models` but the base modules.

The names below are imported on first use, so that `keras_wrn.models.registry`
(names, parameter counts, the paper's errors) reads without Keras. This is
the one table of the models' public names; `keras_wrn` re-exports it.
"""

from keras_wrn._lazy import lazy_exports

EXPORTS = {
    "WideResNet": "cifar",
    "ImageNetWideResNet": "imagenet",
    "WideResNet18": "imagenet",
    "WideResNet34": "imagenet",
    "WideResNet50_2": "imagenet",
    "WideResNet101_2": "imagenet",
    "StochasticDepth": "layers",
    "ChannelZeroPadding": "layers",
    "feature_extractor": "features",
    "feature_taps": "features",
    "count_macs": "complexity",
    "count_params": "complexity",
    "decode_predictions": "imagenet_utils",
    "imagenet_class_names": "imagenet_utils",
    "preprocess_input": "imagenet_utils",
    "ModelSpec": "registry",
    "PaperResult": "registry",
    "UnknownModelError": "registry",
    "get_model": "registry",
    "get_model_spec": "registry",
    "list_models": "registry",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
