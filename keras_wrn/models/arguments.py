"""Argument checks every keras_wrn builder runs before a single layer is built.

Messages say what was wrong and end with what was received, in the
keras.applications style.
"""

import difflib
import inspect

import keras

from keras_wrn.errors import InvalidArgumentError

# What keras.Model itself takes from a model's config (`get_config` writes it).
MODEL_ARGUMENTS = ("trainable",)


def default_input_shape(size, channels=3):
    """`(size, size, channels)`, in the order of Keras' image data format."""
    if keras.config.image_data_format() == "channels_last":
        return (size, size, channels)
    return (channels, size, size)


def _spatial_and_channels(shape):
    if keras.config.image_data_format() == "channels_last":
        return shape[:2], shape[2]
    return shape[1:], shape[0]


def check_input_shape(input_shape, *, min_size, model_name):
    """Validates a 3-D image shape (no batch axis) for a network of total
    stride `min_size`; spatial dims may be None (any size at call time)."""
    if input_shape is None:
        return
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise InvalidArgumentError(
            f"{model_name} takes images of rank 3 (height, width, channels for channels_last; channels, height, "
            f"width for channels_first), without the batch axis. Received: input_shape={input_shape}")
    spatial, channels = _spatial_and_channels(shape)
    if channels is None or int(channels) < 1:
        raise InvalidArgumentError(
            f"{model_name} needs a known, positive number of input channels. Received: input_shape={input_shape}")
    for dim in spatial:
        if dim is not None and int(dim) < min_size:
            raise InvalidArgumentError(
                f"{model_name} downsamples by {min_size}, so images must be at least {min_size}x{min_size} "
                f"pixels. Received: input_shape={input_shape}")


def check_head_arguments(*, include_top, pooling, num_classes):
    """`pooling` is None, "avg" or "max"; with the top, `num_classes` is a positive int."""
    if pooling not in (None, "avg", "max"):
        raise InvalidArgumentError(f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if include_top and (isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1):
        raise InvalidArgumentError(
            f"num_classes must be a positive integer when include_top=True. Received: num_classes={num_classes!r}")


def refuse_unknown_arguments(cls, kwargs):
    """Raises, before any layer is built, if `kwargs` holds an argument
    `cls` does not take: a typo (`dropout=0.3`) must never be ignored."""
    unknown = sorted(set(kwargs) - set(MODEL_ARGUMENTS))
    if not unknown:
        return
    valid = [name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "kwargs")]
    valid += MODEL_ARGUMENTS
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise InvalidArgumentError(
        f"{cls.__name__} does not take {', '.join(hints)}. Its arguments: {', '.join(valid)}. "
        f"Received: {', '.join(f'{name}={kwargs[name]!r}' for name in unknown)}")
