"""keras_wrn: Wide Residual Networks (Zagoruyko & Komodakis, BMVC 2016) for Keras 3.

The model code is pure Keras 3 (TensorFlow, JAX or PyTorch backend);
importing this package does not import TensorFlow.

    import keras_wrn
    model = keras_wrn.WideResNet(depth=28, k=10, num_classes=100)
    model = keras_wrn.get_model("wrn-16-8", num_classes=10, dropout_rate=0.4)
    keras_wrn.list_models()
    model = keras_wrn.WideResNet50_2(weights="imagenet")  # torchvision's, converted once
"""

from keras_wrn.models import (
    ImageNetWideResNet,
    StochasticDepth,
    WideResNet,
    WideResNet18,
    WideResNet34,
    WideResNet50_2,
    WideResNet101_2,
    count_macs,
    count_params,
    decode_predictions,
    imagenet_class_names,
    preprocess_input,
)
from keras_wrn.models.registry import (
    ModelSpec,
    PaperResult,
    UnknownModelError,
    get_model,
    get_model_spec,
    list_models,
)

__version__ = "0.1.0"

__all__ = [
    "ImageNetWideResNet",
    "ModelSpec",
    "PaperResult",
    "StochasticDepth",
    "UnknownModelError",
    "WideResNet",
    "WideResNet18",
    "WideResNet34",
    "WideResNet50_2",
    "WideResNet101_2",
    "count_macs",
    "count_params",
    "decode_predictions",
    "imagenet_class_names",
    "preprocess_input",
    "get_model",
    "get_model_spec",
    "list_models",
]
