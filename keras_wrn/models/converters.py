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
    """Registers `function(source) -> path of a layer-weights file`, where
    `source` is a `weights.Weights` record with a URL or the path of a
    PyTorch checkpoint; the last one registered is used. Returns `function`."""
    _CONVERTERS.append(function)
    return function


def convert(source):
    """The layer-weights file the registered converter makes of `source`."""
    if not _CONVERTERS:
        raise InvalidArgumentError(
            f"No converter is registered for {source!r} (a published checkpoint or a PyTorch checkpoint); "
            f"import keras_wrn (which registers keras_wrn.convert) before building the model.")
    return _CONVERTERS[-1](source)
