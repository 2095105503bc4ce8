"""Published ImageNet weights: fetched once by URL through Keras' file cache,
checked against the hash their file names pin, converted once, and kept in
the cache as Keras layer weights (`.npz`), so later loads need neither the
network nor torch.

    keras_wrn.WideResNet50_2(weights="imagenet")      # torchvision IMAGENET1K_V2
    keras_wrn.WideResNet50_2(weights="imagenet-v1")   # torchvision IMAGENET1K_V1
    keras_wrn.WideResNet50_2(weights="imagenet-paper")  # the paper's own export
    keras_wrn.WideResNet101_2(weights="imagenet")
    keras_wrn.WideResNet50_2(weights="wide_resnet50_2-9ba9bcbe.pth")  # a local file
"""

import dataclasses
import hashlib
import os

from keras_wrn.convert.checkpoint import CHECKPOINT_SUFFIXES, CheckpointError, read_state_dict
from keras_wrn.convert.mapping import to_keras_layer_weights
from keras_wrn.errors import InvalidArgumentError

CACHE_SUBDIR = os.path.join("models", "keras_wrn")


@dataclasses.dataclass(frozen=True)
class PublishedWeights:
    """A published checkpoint; `url`'s file name carries the first 8 hex
    digits of its SHA-256 (torch.hub's convention), checked after download."""

    url: str
    source: str
    top1: float  # single-crop ImageNet top-1 accuracy (%) as published
    top5: float
    resize: int  # evaluation: resize the short side to this, centre-crop 224
    note: str = ""

    @property
    def filename(self):
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self):
        return self.filename.rsplit("-", 1)[-1].split(".")[0]


PRETRAINED = {
    "WRN-50-2-bottleneck": {
        "imagenet": PublishedWeights(
            "https://download.pytorch.org/models/wide_resnet50_2-9ba9bcbe.pth",
            "torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V2", 81.602, 95.758, 232,
            "torchvision's improved recipe (long schedule, strong augmentation)"),
        "imagenet-v1": PublishedWeights(
            "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
            "torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V1", 78.468, 94.086, 256),
        "imagenet-paper": PublishedWeights(
            "https://s3.amazonaws.com/modelzoo-networks/wide-resnet-50-2-export-5ae25d50.pth",
            "the paper's WRN-50-2-bottleneck export (szagoruyko/functional-zoo), BN folded into convs",
            78.1, 93.97, 256, "Table 8 of the paper: 21.9% top-1, 6.03% top-5 error"),
    },
    "WRN-101-2-bottleneck": {
        "imagenet": PublishedWeights(
            "https://download.pytorch.org/models/wide_resnet101_2-d733dc28.pth",
            "torchvision Wide_ResNet101_2_Weights.IMAGENET1K_V2", 82.510, 96.020, 232,
            "torchvision's improved recipe (long schedule, strong augmentation)"),
        "imagenet-v1": PublishedWeights(
            "https://download.pytorch.org/models/wide_resnet101_2-32ee1156.pth",
            "torchvision Wide_ResNet101_2_Weights.IMAGENET1K_V1", 78.848, 94.284, 256),
    },
}


class PretrainedWeightsError(InvalidArgumentError):
    """Published weights cannot be had; the message says how to pass a file."""


def keras_home():
    """Keras' cache root: KERAS_HOME, default ~/.keras."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def cache_dir():
    """Keras' cache folder for keras_wrn."""
    return os.path.join(keras_home(), CACHE_SUBDIR)


def sha256_prefix(path, length=8):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]


def published(model_name, tag):
    """The `PublishedWeights` of `tag` for `model_name` (the paper's label,
    e.g. "WRN-50-2-bottleneck"), or PretrainedWeightsError listing the tags."""
    tags = PRETRAINED.get(model_name, {})
    if tag not in tags:
        from keras_wrn.models import trained

        available = ", ".join(f"{name}: {sorted(t)}" for name, t in PRETRAINED.items())
        own = ", ".join(f"{name}: {sorted(t)}" for name, t in trained.available().items())
        raise PretrainedWeightsError(
            f"No published weights {tag!r} for {model_name}. Published: {available}; trained by "
            f"keras-wrn: {own}. Or pass a "
            f"PyTorch checkpoint (.pth, .safetensors) or a keras_wrn .weights.h5 / .keras file. "
            f"Received: weights={tag!r}"
        )
    return tags[tag]


def fetch(weights):
    """Downloads a `PublishedWeights` file into Keras' cache (once) and
    checks its hash; returns the local path."""
    import socket

    import keras

    target = os.path.join(cache_dir(), weights.filename)
    if not os.path.exists(target):
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(60)  # urllib waits forever on a dead network otherwise
        try:
            keras.utils.get_file(weights.filename, weights.url, cache_dir=keras_home(), cache_subdir=CACHE_SUBDIR)
        except Exception as error:  # get_file wraps network errors in plain Exceptions
            raise PretrainedWeightsError(
                f"Could not download {weights.url} ({str(error).splitlines()[0]}). Offline, download "
                f"it on a networked machine and pass the file instead: weights='path/to/"
                f"{weights.filename}' (converted once; needs torch), or convert it with `keras-wrn "
                f"convert path/to/{weights.filename} --model ... --out model.keras`."
            ) from None
        finally:
            socket.setdefaulttimeout(previous)
    if sha256_prefix(target) != weights.hash_prefix:
        os.remove(target)
        raise PretrainedWeightsError(
            f"The download of {weights.url} is corrupt (its SHA-256 does not start with "
            f"{weights.hash_prefix}); it was deleted. Try again."
        )
    return target


def convert_to_cache(checkpoint_path, tag=None):
    """Converts a checkpoint into Keras layer weights in the cache; returns
    the `.npz` path (reused when present)."""
    from keras_wrn.models.common import save_layer_weights

    stem = os.path.basename(checkpoint_path).rsplit(".", 1)[0]
    key = tag or sha256_prefix(checkpoint_path, 16)
    target = os.path.join(cache_dir(), f"{stem}.{key}.keras_wrn.npz")
    if not os.path.exists(target):
        _, layer_weights = to_keras_layer_weights(read_state_dict(checkpoint_path))
        os.makedirs(cache_dir(), exist_ok=True)
        save_layer_weights(target, layer_weights)
    return target


def layer_weights_file(weights, model_name):
    """The converted `.npz` for a published tag or a checkpoint path."""
    if os.fspath(weights).endswith(CHECKPOINT_SUFFIXES):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise CheckpointError(f"The checkpoint {path!r} does not exist.")
        return convert_to_cache(path)
    entry = published(model_name, weights)
    converted = os.path.join(cache_dir(), f"{entry.filename.rsplit('.', 1)[0]}.{weights}.keras_wrn.npz")
    if os.path.exists(converted):
        return converted
    return convert_to_cache(fetch(entry), tag=weights)
