"""keras_wrn: Wide Residual Networks (Zagoruyko & Komodakis, BMVC 2016) for Keras 3.

The model code is pure Keras 3 (TensorFlow, JAX or PyTorch backend);
importing this package does not import TensorFlow.

    import keras_wrn
    model = keras_wrn.WideResNet(depth=28, k=10, num_classes=100)
    model = keras_wrn.get_model("wrn-16-8", num_classes=10, dropout_rate=0.4)
    keras_wrn.list_models()
    model = keras_wrn.WideResNet50_2(weights="imagenet")  # torchvision's, converted once

The public names are imported on first use (PEP 562), so that `import
keras_wrn` and the `keras-wrn` command's help and model list load neither
Keras nor a backend. The model classes are registered with Keras whenever
Keras is loaded, so `.keras` files of keras_wrn models load after a plain
`import keras_wrn`.
"""

import importlib
import importlib.abc
import importlib.util
import sys

from keras_wrn._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> the submodule that defines it
_PUBLIC = {
    "ImageNetWideResNet": "models.imagenet",
    "WideResNet18": "models.imagenet",
    "WideResNet34": "models.imagenet",
    "WideResNet50_2": "models.imagenet",
    "WideResNet101_2": "models.imagenet",
    "WideResNet": "models.cifar",
    "StochasticDepth": "models.layers",
    "count_macs": "models.complexity",
    "count_params": "models.complexity",
    "decode_predictions": "models.imagenet_utils",
    "imagenet_class_names": "models.imagenet_utils",
    "preprocess_input": "models.imagenet_utils",
    "ModelSpec": "models.registry",
    "PaperResult": "models.registry",
    "UnknownModelError": "models.registry",
    "get_model": "models.registry",
    "get_model_spec": "models.registry",
    "list_models": "models.registry",
    "KerasWRNError": "errors",
    "InvalidArgumentError": "errors",
    "MissingFileError": "errors",
}

__all__ = sorted(_PUBLIC)

# The modules whose classes `.keras` files name (models, layers, optimizer).
_KERAS_CLASSES = (
    "keras_wrn.models.cifar",
    "keras_wrn.models.imagenet",
    "keras_wrn.models.layers",
    "keras_wrn.data.augment",
    "keras_wrn.training.optimizer",
)


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Registers keras_wrn's Keras classes (imports `_KERAS_CLASSES`) once
    Keras is loaded, at the first moment no keras_wrn module is half-loaded:
    Keras may be first imported by one of those very modules, and importing
    the others from inside it would be circular."""

    def __init__(self):
        self.keras_loaded = False
        self.loading = 0  # keras_wrn modules being executed right now

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("keras_wrn."):
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        execute = spec.loader.exec_module

        def exec_module(module):
            self.loading += 1
            try:
                execute(module)
            finally:
                self.loading -= 1
            self.keras_loaded |= fullname == "keras"
            if self.keras_loaded and not self.loading and self in sys.meta_path:
                sys.meta_path.remove(self)
                _register_keras_classes()

        spec.loader.exec_module = exec_module
        return spec


def _register_keras_classes():
    for module in _KERAS_CLASSES:
        importlib.import_module(module)


def _convert_weights(source):
    """Published checkpoints and PyTorch checkpoint files, for the models' `weights=`."""
    from keras_wrn.convert.pretrained import layer_weights_file

    return layer_weights_file(source)


# The models read converted weights through this hook, never importing convert.
importlib.import_module("keras_wrn.models.converters").register_converter(_convert_weights)

if "keras" in sys.modules:
    _register_keras_classes()
else:
    sys.meta_path.insert(0, _RegisterWhenKerasLoads())
