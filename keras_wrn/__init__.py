"""keras_wrn: Wide Residual Networks (Zagoruyko & Komodakis, BMVC 2016) for Keras 3.

The model code is pure Keras 3 (TensorFlow, JAX or PyTorch backend);
importing this package does not import Keras, TensorFlow or any backend.

    import keras_wrn
    model = keras_wrn.WideResNet(depth=28, k=10, num_classes=100)
    model = keras_wrn.get_model("wrn-16-8", num_classes=10, dropout_rate=0.4)
    keras_wrn.list_models()
    model = keras_wrn.WideResNet50_2(weights="imagenet")  # torchvision's, converted once

Public names are imported on first use; `.keras` files of keras_wrn models
load after a plain `import keras_wrn` (`keras_wrn._lazy`).
"""

from keras_wrn import models
from keras_wrn._lazy import lazy_exports, register_with_keras
from keras_wrn._version import __version__  # noqa: F401 (the public version)
from keras_wrn.models import weights as _weights

_EXPORTS = {
    **{name: f"models.{module}" for name, module in models.EXPORTS.items()},
    "KerasWRNError": "errors",
    "InvalidArgumentError": "errors",
    "MissingFileError": "errors",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

# Every class a `.keras` file of ours can name: models, layers, the
# augmentation and the optimizer (a test checks this against the package).
KERAS_CLASSES = {
    "keras_wrn.models.cifar": ("WideResNet",),
    "keras_wrn.models.imagenet": ("ImageNetWideResNet",),
    "keras_wrn.models.layers": ("StochasticDepth", "ChannelZeroPadding"),
    "keras_wrn.data.augment": ("RandomReflectCrop", "ZCAWhitening", "Cutout"),
    "keras_wrn.data.autoaugment": ("AutoAugment",),
    "keras_wrn.training.losses": ("SmoothedCrossentropy",),
    "keras_wrn.training.optimizer": ("TorchSGD",),
}
register_with_keras(KERAS_CLASSES)


def _convert_weights(source):
    """Published and PyTorch checkpoints -> layer weights, for `weights=`."""
    from keras_wrn.convert.pretrained import layer_weights_file

    return layer_weights_file(source)


_weights.set_converter(_convert_weights)
