"""Published ImageNet weights (the records with a URL in
`keras_wrn.models.weights`): fetched once through Keras' file cache, checked
against the hash their file names pin, converted once, and kept in the cache
as Keras layer weights (`.npz`), so later loads need neither the network nor
torch. `keras_wrn/__init__.py` plugs `layer_weights_file` into the models.

    keras_wrn.WideResNet50_2(weights="imagenet")      # torchvision IMAGENET1K_V2
    keras_wrn.WideResNet50_2(weights="imagenet-v1")   # torchvision IMAGENET1K_V1
    keras_wrn.WideResNet50_2(weights="imagenet-paper")  # the paper's own export
    keras_wrn.WideResNet101_2(weights="imagenet")
    keras_wrn.WideResNet50_2(weights="wide_resnet50_2-9ba9bcbe.pth")  # a local file
"""

import os

from keras_wrn.convert.checkpoint import CheckpointError, read_state_dict
from keras_wrn.convert.mapping import to_keras_layer_weights
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.files import sha256_file
from keras_wrn.models.weights import Weights

CACHE_SUBDIR = os.path.join("models", "keras_wrn")


class PretrainedWeightsError(InvalidArgumentError):
    """Published weights cannot be had; the message says how to pass a file."""


def keras_home():
    """Keras' cache root: KERAS_HOME, default ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_dir():
    """Keras' cache folder for keras_wrn."""
    return os.path.join(keras_home(), CACHE_SUBDIR)


def fetch(weights):
    """Downloads the checkpoint of a `Weights` record with a URL source into
    Keras' cache (once) and checks its hash; returns the local path."""
    import socket

    import keras

    target = os.path.join(cache_dir(), weights.filename)
    if not os.path.exists(target):
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)  # urllib waits forever on a dead network otherwise
        try:
            keras.utils.get_file(weights.filename, weights.source, cache_dir=keras_home(), cache_subdir=CACHE_SUBDIR)
        except Exception as error:  # get_file wraps network errors in plain Exceptions
            raise PretrainedWeightsError(
                f"Could not download {weights.source} ({str(error).splitlines()[0]}). Offline, download "
                f"it on a networked machine and pass the file instead: weights='path/to/"
                f"{weights.filename}' (converted once; needs torch), or convert it with `keras-wrn "
                f"convert path/to/{weights.filename} --model ... --out model.keras`."
            ) from None
        finally:
            socket.setdefaulttimeout(previous)
    if not sha256_file(target).startswith(weights.sha256):
        os.remove(target)
        raise PretrainedWeightsError(
            f"The download of {weights.source} is corrupt (its SHA-256 does not start with "
            f"{weights.sha256}); it was deleted. Try again."
        )
    return target


def convert_to_cache(checkpoint_path, tag=None):
    """Converts a checkpoint into Keras layer weights in the cache; returns
    the `.npz` path (reused when present)."""
    from keras_wrn.models.weights_io import save_layer_weights

    stem = os.path.basename(checkpoint_path).rsplit(".", 1)[0]
    key = tag or sha256_file(checkpoint_path)[:16]
    target = os.path.join(cache_dir(), f"{stem}.{key}.keras_wrn.npz")
    if not os.path.exists(target):
        _, layer_weights = to_keras_layer_weights(read_state_dict(checkpoint_path))
        os.makedirs(cache_dir(), exist_ok=True)
        save_layer_weights(target, layer_weights)
    return target


def layer_weights_file(source):
    """The converted `.npz` for a `Weights` record (fetched by URL once) or
    the path of a PyTorch checkpoint."""
    if not isinstance(source, Weights):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise CheckpointError(f"The checkpoint {path!r} does not exist.")
        return convert_to_cache(path)
    converted = os.path.join(cache_dir(), f"{source.filename.rsplit('.', 1)[0]}.{source.tag}.keras_wrn.npz")
    if os.path.exists(converted):
        return converted
    return convert_to_cache(fetch(source), tag=source.tag)
