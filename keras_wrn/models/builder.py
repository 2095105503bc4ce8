"""The one builder skeleton of keras_wrn's functional models.

    inputs -> preprocessing (optional) -> the family's body -> head -> weights

`ClassifierModel._build_network` runs it for both families (`cifar`,
`imagenet`): every argument is checked (`arguments`) and the weights file is
opened and checked (`weights_io`) before the first layer is built; the
constructor arguments are the config (`get_config` returns them,
`from_config` is `cls(**config)`), as keras-hub's backbones.
"""

import dataclasses
import os
from typing import Callable

import keras
from keras import layers

from keras_wrn.errors import InvalidArgumentError, MissingFileError
from keras_wrn.models import blocks
from keras_wrn.models import weights as weights_table
from keras_wrn.models.arguments import check_head_arguments, check_input_shape, default_input_shape
from keras_wrn.models.weights_io import CHECKPOINT_SUFFIXES, WEIGHTS_SUFFIXES, WeightsFile


def model_inputs(input_tensor, input_shape, *, default_size, min_size, model_name):
    """Returns `(img_input, inputs)`: the tensor the network reads and what
    the functional model takes as inputs (the source of `input_tensor`)."""
    if input_tensor is None:
        shape = tuple(input_shape) if input_shape is not None else default_input_shape(default_size)
        check_input_shape(shape, min_size=min_size, model_name=model_name)
        img_input = layers.Input(shape=shape, name="image")
        return img_input, img_input
    tensor_shape = tuple(input_tensor.shape[1:])
    check_input_shape(tensor_shape, min_size=min_size, model_name=model_name)
    if input_shape is not None and tuple(input_shape) != tensor_shape:
        raise InvalidArgumentError(
            f"input_shape does not match the shape of input_tensor {tensor_shape}. Received: "
            f"input_shape={input_shape}")
    if not keras.backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=tensor_shape, name="image")
        return img_input, img_input
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def classification_head(x, *, include_top, pooling, num_classes, classifier_activation, kernel_initializer,
                        bias_initializer="zeros"):
    """Global pooling and the `predictions` Dense layer (logits when
    `classifier_activation=None`).

    Input shape: `(N, H, W, C)`. Output shape: `(N, num_classes)` with the
    top, `(N, C)` with `pooling`, else the input unchanged.
    """
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(num_classes, activation=classifier_activation, kernel_initializer=kernel_initializer,
                            bias_initializer=bias_initializer, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def resolve_weights(weights, registry_name, model_name):
    """Returns `(record, weights_file)`: the weights table's record when
    `weights` is one of `registry_name`'s tags (else None), and the opened
    `WeightsFile` the builder loads (None for random initialisation).
    keras-wrn's own weights are checked repository files; a published
    checkpoint (a URL in the table) or a PyTorch checkpoint path becomes a
    converted layer-weights file through `weights.converted_file` (the
    converter keras_wrn.convert plugs in). A name that is no file and no tag
    is refused, listing the tags."""
    if weights is None:
        return None, None
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    record = None
    if isinstance(path, str) and weights_table.is_weights_tag(registry_name, path):
        record = weights_table.get_weights(registry_name, path)
        path = weights_table.converted_file(record) if record.is_url else record.local_path()
    elif isinstance(path, str) and path.endswith(CHECKPOINT_SUFFIXES):
        path = weights_table.converted_file(path)
    elif isinstance(path, str) and "." not in os.path.basename(path) and not os.path.exists(path):
        weights_table.get_weights(registry_name, path)  # raises, listing every model's tags
    if not isinstance(path, str) or not path.endswith(WEIGHTS_SUFFIXES):
        raise InvalidArgumentError(
            f"weights must be None, a tag of the weights table (keras_wrn.list_models(pretrained=True)), a "
            f"PyTorch checkpoint (.pth, .safetensors) or the path to a `.weights.h5` or `.keras` file saved by "
            f"keras_wrn for {model_name}. Received: weights={weights!r}")
    if not os.path.isfile(path):
        raise MissingFileError(
            f"The weights file {path!r} does not exist. Pass the path of a `.weights.h5` or `.keras` file "
            f"saved from a {model_name}, or weights=None for random initialisation. Received: weights={weights!r}")
    return record, WeightsFile.read(path)


def resolve_preprocessing(include_preprocessing, record, model_name):
    """The `weights.Preprocessing` the model applies to its input, or None.

    `None` (the default): the weights' own when they come from the table,
    none otherwise. `True`: the weights' own, which the table must have.
    `False`: none (feed inputs normalised as in training, e.g. with
    `preprocess_input`). A dict `{"mean": [...], "std": [...]}`: these
    per-channel statistics of pixels 0-255 (what the config stores)."""
    if include_preprocessing is None:
        return record.preprocessing if record is not None else None
    if include_preprocessing is True:
        if record is None:
            raise InvalidArgumentError(
                f"include_preprocessing=True takes the statistics of weights from the table "
                f"(keras_wrn.list_models(pretrained=True)), and {model_name} was asked for none. Pass them: "
                f"include_preprocessing={{'mean': [...], 'std': [...]}} (pixels 0-255), or False. "
                f"Received: include_preprocessing=True")
        return record.preprocessing
    if include_preprocessing is False:
        return None
    if isinstance(include_preprocessing, str):
        return weights_table.named_normalization(include_preprocessing)
    return weights_table.Preprocessing.from_dict(include_preprocessing)


def preprocessing_layer(x, preprocessing):
    """`(x - mean) / std` per channel, on RGB pixels 0-255 (the
    `preprocessing` layer; no weights). Shapes unchanged."""
    return layers.Normalization(axis=blocks.channel_axis(), mean=list(preprocessing.mean),
                                variance=[s * s for s in preprocessing.std], name="preprocessing")(x)


def serialize_activation(activation):
    """A JSON-able form of `classifier_activation` (a name, None or a
    serialized callable)."""
    if activation is None or isinstance(activation, str):
        return activation
    return keras.saving.serialize_keras_object(activation)


@dataclasses.dataclass(frozen=True)
class Architecture:
    """What a family's builder tells the skeleton about one network."""

    label: str  # the paper's name, in messages: "WRN-28-10", "WRN-50-2-bottleneck"
    registry_name: str  # the weights table's key: "wrn-28-10"
    default_name: str  # the Keras model name when `name` is None
    default_size: int  # input size when `input_shape` is None
    min_size: int  # total stride: the smallest input
    # channels of the features -> (kernel, bias) initializers of `predictions`
    classifier_initializers: Callable[[int], tuple]


class ClassifierModel(keras.Model):
    """Base of keras_wrn's functional models: the one builder skeleton
    (`_build_network`) that each family fills with its body, and the
    constructor arguments as the config (`get_config` returns them,
    `from_config` is `cls(**config)`)."""

    def _build_network(self, body, architecture, *, weights, include_preprocessing, input_tensor, input_shape,
                       num_classes, include_top, pooling, classifier_activation, name, kwargs):
        """inputs -> preprocessing (optional) -> `body(x)` -> head, then the
        weights. Every argument is checked before the first layer is built.

        `body` takes the image tensor `(N, H, W, C)` and returns the
        features `(N, H', W', C')` the head pools."""
        check_head_arguments(include_top=include_top, pooling=pooling, num_classes=num_classes)
        record, weights_file = resolve_weights(weights, architecture.registry_name, architecture.label)
        if weights_file is not None:
            weights_file.check_fits(include_top=include_top, num_classes=num_classes)
        preprocessing = resolve_preprocessing(include_preprocessing, record, architecture.label)
        img_input, inputs = model_inputs(input_tensor, input_shape, default_size=architecture.default_size,
                                         min_size=architecture.min_size, model_name=architecture.label)
        x = img_input if preprocessing is None else preprocessing_layer(img_input, preprocessing)
        x = body(x)
        kernel_initializer, bias_initializer = architecture.classifier_initializers(x.shape[blocks.channel_axis()])
        outputs = classification_head(x, include_top=include_top, pooling=pooling, num_classes=num_classes,
                                      classifier_activation=classifier_activation,
                                      kernel_initializer=kernel_initializer, bias_initializer=bias_initializer)
        super().__init__(inputs=inputs, outputs=outputs, name=name or architecture.default_name, **kwargs)
        if weights_file is not None:
            weights_file.load_into(self)
        self.num_classes = num_classes
        self.include_top = include_top
        self.include_preprocessing = False if preprocessing is None else preprocessing.to_dict()
        self.pooling = pooling
        self.classifier_activation = classifier_activation
        self._input_shape_arg = tuple(img_input.shape[1:])

    def _architecture_config(self):
        """The subclass's own constructor arguments."""
        raise NotImplementedError

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            **self._architecture_config(),
            "num_classes": self.num_classes,
            "include_top": self.include_top,
            "include_preprocessing": self.include_preprocessing,
            "input_shape": list(self._input_shape_arg),
            "pooling": self.pooling,
            "classifier_activation": serialize_activation(self.classifier_activation),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("classifier_activation"), dict):
            config["classifier_activation"] = keras.saving.deserialize_keras_object(config["classifier_activation"])
        if config.get("input_shape") is not None:
            config["input_shape"] = tuple(config["input_shape"])
        return cls(**config)
