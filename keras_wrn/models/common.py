"""What every keras_wrn builder shares: argument checks, inputs, head, weights.

All checks run before a single layer is built, and every message ends with
what was received, in the keras.applications style.
"""

import contextlib
import dataclasses
import difflib
import inspect
import io
import os
import zipfile
from typing import Callable

import keras
import numpy as np
from keras import layers

from keras_wrn.models import blocks, converters
from keras_wrn.models import weights as weights_table
from keras_wrn.models.errors import InvalidArgumentError, MissingFileError


class WeightsMismatchError(InvalidArgumentError):
    """A weights file does not fit the requested model."""


def default_input_shape(size, channels=3):
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
            f"{model_name} takes images of rank 3 (height, width, channels for "
            f"channels_last; channels, height, width for channels_first), "
            f"without the batch axis. Received: input_shape={input_shape}"
        )
    spatial, channels = _spatial_and_channels(shape)
    if channels is None or int(channels) < 1:
        raise InvalidArgumentError(
            f"{model_name} needs a known, positive number of input channels. "
            f"Received: input_shape={input_shape}"
        )
    for dim in spatial:
        if dim is not None and int(dim) < min_size:
            raise InvalidArgumentError(
                f"{model_name} downsamples by {min_size}, so images must be at "
                f"least {min_size}x{min_size} pixels. Received: "
                f"input_shape={input_shape}"
            )


def check_head_arguments(*, include_top, pooling, num_classes, weights, model_name):
    if pooling not in (None, "avg", "max"):
        raise InvalidArgumentError(
            f"pooling must be None, 'avg' or 'max'. Received: pooling={pooling!r}"
        )
    if include_top and (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes < 1
    ):
        raise InvalidArgumentError(
            f"num_classes must be a positive integer when include_top=True. "
            f"Received: num_classes={num_classes!r}"
        )
    if weights is None:
        return
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(path, str) or not path.endswith((".weights.h5", ".keras", LAYER_WEIGHTS_SUFFIX)):
        raise InvalidArgumentError(
            f"weights must be None, a tag of the weights table (keras_wrn.list_models(pretrained=True)), a "
            f"PyTorch checkpoint (.pth, .safetensors) or the path to a `.weights.h5` or `.keras` "
            f"file saved by keras_wrn for {model_name}. Received: weights={weights!r}"
        )
    if not os.path.isfile(path):
        raise MissingFileError(
            f"The weights file {path!r} does not exist. Pass the path of a "
            f"`.weights.h5` or `.keras` file saved from a {model_name}, or "
            f"weights=None for random initialisation. Received: weights={weights!r}"
        )
    with damaged_file_error(path):
        saved_classes = saved_num_classes(path)
    if include_top and saved_classes is None:
        raise WeightsMismatchError(
            f"The weights in {path!r} have no classifier, so they cannot fill a "
            f"model with include_top=True; build it with include_top=False. "
            f"Received: include_top=True, weights={weights!r}"
        )
    if include_top and saved_classes != num_classes:
        raise WeightsMismatchError(
            f"The weights in {path!r} have a classifier for {saved_classes} "
            f"classes; pass num_classes={saved_classes}, or include_top=False to "
            f"reuse the features only. Received: num_classes={num_classes}"
        )


LAYER_WEIGHTS_SUFFIX = ".npz"
# PyTorch checkpoints, which keras_wrn.convert turns into layer weights.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def saved_num_classes(path):
    """The classifier width stored in a keras_wrn weights or .keras file.

    Keras 3 stores weights under class-based object paths
    (`layers/dense/vars/0` for our only Dense layer, `predictions`); returns
    None when the file holds no classifier.
    """
    import h5py  # a Keras dependency; imported here to keep import time low

    if path.endswith(LAYER_WEIGHTS_SUFFIX):
        with np.load(path) as stored:
            return int(stored["predictions/0"].shape[-1]) if "predictions/0" in stored.files else None
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive:
            buffer = io.BytesIO(archive.read("model.weights.h5"))
        handle = h5py.File(buffer, "r")
    else:
        handle = h5py.File(path, "r")
    with handle:
        group = handle.get("layers")
        dense = sorted(name for name in (group or {}) if name.startswith("dense"))
        if not dense:
            return None
        return int(group[dense[-1]]["vars"]["0"].shape[-1])


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
            f"input_shape does not match the shape of input_tensor "
            f"{tensor_shape}. Received: input_shape={input_shape}"
        )
    if not keras.backend.is_keras_tensor(input_tensor):
        img_input = layers.Input(tensor=input_tensor, shape=tensor_shape, name="image")
        return img_input, img_input
    return input_tensor, keras.utils.get_source_inputs(input_tensor)


def classification_head(
    x, *, include_top, pooling, num_classes, classifier_activation,
    kernel_initializer, bias_initializer="zeros",
):
    """Global pooling and the `predictions` Dense layer (logits when
    `classifier_activation=None`).

    Input shape: `(N, H, W, C)`. Output shape: `(N, num_classes)` with the
    top, `(N, C)` with `pooling`, else the input unchanged.
    """
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(
            num_classes,
            activation=classifier_activation,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            name="predictions",
        )(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def resolve_weights(weights, registry_name):
    """Returns `(record, file)`: the weights table's record when `weights`
    is one of `registry_name`'s tags (else None), and the file the builder
    loads. keras-wrn's own weights are checked repository files; a published
    checkpoint (a URL in the table) or a PyTorch checkpoint path becomes a
    converted layer-weights file in Keras' cache through the converter
    registered in `models.converters` (keras_wrn.convert, imported only then,
    and torch for `.pth` files); a keras_wrn weights file is returned as is.
    A name that is no file and no tag is refused, listing the tags."""
    path = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(path, str):
        return None, weights
    if weights_table.is_weights_tag(registry_name, path):
        record = weights_table.get_weights(registry_name, path)
        return record, (converters.convert(record) if record.is_url else record.local_path())
    if path.endswith(CHECKPOINT_SUFFIXES):
        return None, converters.convert(path)
    if "." not in os.path.basename(path) and not os.path.exists(path):
        weights_table.get_weights(registry_name, path)  # raises, listing every model's tags
    return None, weights


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
    return weights_table.Preprocessing.from_dict(include_preprocessing)


def preprocessing_layer(x, preprocessing):
    """`(x - mean) / std` per channel, on RGB pixels 0-255 (the
    `preprocessing` layer; no weights). Shapes unchanged."""
    return layers.Normalization(
        axis=blocks.channel_axis(), mean=list(preprocessing.mean),
        variance=[s * s for s in preprocessing.std], name="preprocessing",
    )(x)


def save_layer_weights(path, layer_weights, compressed=False):
    """Writes `{layer name: [arrays]}` as a `.npz` file (atomically),
    zip-deflated if `compressed` (slower to write, for files that are kept)."""
    flat = {f"{name}/{i}": array for name, arrays in layer_weights.items() for i, array in enumerate(arrays)}
    tmp = f"{path}.tmp.npz"
    (np.savez_compressed if compressed else np.savez)(tmp, **flat)
    os.replace(tmp, path)


def read_layer_weights(path):
    """`{layer name: [arrays]}` from a file written by `save_layer_weights`."""
    grouped = {}
    with np.load(path) as stored:
        for key in stored.files:
            name, _, index = key.rpartition("/")
            grouped.setdefault(name, {})[int(index)] = stored[key]
    return {name: [arrays[i] for i in sorted(arrays)] for name, arrays in grouped.items()}


def assign_layer_weights(model, layer_weights, source="the checkpoint"):
    """Sets the weights of `model`'s layers by name from `{layer name:
    [arrays]}`. Every layer with weights must be covered and every array must
    fit; otherwise raises WeightsMismatchError naming each problem (nothing
    is changed then). A classifier in `layer_weights` is skipped when the
    model has none (include_top=False)."""
    layers_by_name = {layer.name: layer for layer in model.layers}
    problems, assignments = [], []
    for name, arrays in layer_weights.items():
        layer = layers_by_name.get(name)
        if layer is None:
            if name != "predictions":
                problems.append(f"{name}: no such layer in {model.name}")
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(a.shape) for a in arrays]
        if expected != received:
            problems.append(f"{name}: {source} has shapes {received}, the layer needs {expected}")
        else:
            assignments.append((layer, arrays))
    covered = set(layer_weights)
    problems += [f"{layer.name}: not set by {source}" for layer in model.layers
                 if layer.weights and layer.name not in covered]
    if problems:
        shown = "; ".join(problems[:12]) + (f"; and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise WeightsMismatchError(f"{source} does not fit {model.name}: {shown}")
    for layer, arrays in assignments:
        # float16 files (half the size) load into the layers' own dtypes.
        layer.set_weights([np.asarray(a, dtype=v.dtype) for a, v in zip(arrays, layer.weights)])


def load_weights(model, weights):
    """Loads a keras_wrn weights file (`.weights.h5`, `.keras`, or converted
    layer weights `.npz`) into `model`, with a clear error when the
    architecture differs."""
    if weights is None:
        return
    if os.fspath(weights).endswith(LAYER_WEIGHTS_SUFFIX):
        with damaged_file_error(os.fspath(weights)):
            stored = read_layer_weights(os.fspath(weights))
        assign_layer_weights(model, stored, source=repr(os.fspath(weights)))
        return
    try:
        with damaged_file_error(os.fspath(weights)):
            model.load_weights(os.fspath(weights))
    except ValueError as error:
        raise WeightsMismatchError(
            f"The weights in {os.fspath(weights)!r} do not fit {model.name}: "
            f"they were saved from a different architecture ({error}). Build "
            f"the model with the arguments it was saved with."
        ) from error


class DamagedWeightsFileError(InvalidArgumentError):
    """A weights file that cannot be read (truncated, corrupt or another format)."""


@contextlib.contextmanager
def damaged_file_error(path):
    """Turns the many errors a damaged file raises while it is read (h5py's
    OSError, BadZipFile, numpy's, Keras') into one that names the file."""
    try:
        yield
    except (InvalidArgumentError, MissingFileError):
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedWeightsFileError(
            f"Cannot read the weights file {path}: it is damaged, truncated or not a "
            f"{os.path.splitext(path)[1] or 'weights'} file ({type(error).__name__}: {reason[:200]}). "
            f"Save, convert or download it again.") from None


def serialize_activation(activation):
    """A JSON-able form of `classifier_activation` (a name, None or a
    serialized callable)."""
    if activation is None or isinstance(activation, str):
        return activation
    return keras.saving.serialize_keras_object(activation)


# What keras.Model itself takes from a model's config (`get_config` writes it).
MODEL_ARGUMENTS = ("trainable",)


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

    def _build_network(
        self, body, architecture, *, weights, include_preprocessing, input_tensor, input_shape, num_classes,
        include_top, pooling, classifier_activation, name, kwargs,
    ):
        """inputs -> preprocessing (optional) -> `body(x)` -> head, then the
        weights. Every argument is checked before the first layer is built.

        `body` takes the image tensor `(N, H, W, C)` and returns the
        features `(N, H', W', C')` the head pools."""
        record, weights_file = resolve_weights(weights, architecture.registry_name)
        check_head_arguments(
            include_top=include_top, pooling=pooling, num_classes=num_classes, weights=weights_file,
            model_name=architecture.label,
        )
        preprocessing = resolve_preprocessing(include_preprocessing, record, architecture.label)
        img_input, inputs = model_inputs(
            input_tensor, input_shape, default_size=architecture.default_size, min_size=architecture.min_size,
            model_name=architecture.label,
        )
        x = img_input if preprocessing is None else preprocessing_layer(img_input, preprocessing)
        x = body(x)
        kernel_initializer, bias_initializer = architecture.classifier_initializers(x.shape[blocks.channel_axis()])
        outputs = classification_head(
            x, include_top=include_top, pooling=pooling, num_classes=num_classes,
            classifier_activation=classifier_activation, kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
        )
        super().__init__(inputs=inputs, outputs=outputs, name=name or architecture.default_name, **kwargs)
        load_weights(self, weights_file)
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
            config["classifier_activation"] = keras.saving.deserialize_keras_object(
                config["classifier_activation"]
            )
        if config.get("input_shape") is not None:
            config["input_shape"] = tuple(config["input_shape"])
        return cls(**config)
