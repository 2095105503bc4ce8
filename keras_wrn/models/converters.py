"""Where the models get weights they cannot read themselves: a published tag
("imagenet", ...) or a PyTorch checkpoint, which another part of keras-wrn
turns into a layer-weights file (`keras_wrn.convert`).

That part plugs in here (keras-hub's preset loaders are the pattern), so
that `keras_wrn.models` imports nothing of ours outside itself: the package
(`keras_wrn/__init__.py`) registers the converter, which imports its module
(and torch, for `.pth` files) only when it is called. Keras-free, so
registering costs nothing at import time.
"""

from keras_wrn.models.errors import InvalidArgumentError

_CONVERTERS = []


def register_converter(function):
    """Registers `function(weights, model_name) -> path of a layer-weights
    file`; the last one registered is used. Returns `function`."""
    _CONVERTERS.append(function)
    return function


def convert(weights, model_name):
    """The layer-weights file the registered converter makes of `weights`."""
    if not _CONVERTERS:
        raise InvalidArgumentError(
            f"No converter is registered for weights={weights!r} (a published tag or a PyTorch checkpoint); "
            f"import keras_wrn (which registers keras_wrn.convert) before building the model.")
    return _CONVERTERS[-1](weights, model_name)
