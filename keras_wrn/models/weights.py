"""The one table of weights a model can be built with by tag.

    keras_wrn.get_model("wrn-16-8", weights="cifar10")         # keras-wrn's own
    keras_wrn.WideResNet50_2(weights="imagenet")               # torchvision IMAGENET1K_V2
    keras_wrn.list_models(pretrained=True)

One `Weights` record per (registry name, tag), for keras-wrn's own trained
weights and for the published ImageNet checkpoints alike (torchvision's
`Weights` enums are the pattern): where the file comes from and its SHA-256,
the classes, the input size, the preprocessing the network was trained with
(a model built with the weights applies it itself, so it takes RGB pixels
0-255), the metrics measured with it and where its record is.

A `source` is either a path inside the keras-wrn repository (a layer-weights
`.npz`, checked against its full SHA-256 before use) or the URL of a PyTorch
checkpoint, whose file name carries the first 8 hex digits of its SHA-256
(torch.hub's convention): those are fetched and converted by the converter
that `keras_wrn.convert` plugs in (`set_converter`, keras-hub's preset
loaders are the pattern): `keras_wrn.models` imports nothing of ours outside
itself and the base modules, and torch only when a `.pth` file is read.
Keras-free.
"""

import dataclasses
import functools
import os
from typing import Mapping

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.files import sha256_file

# The repository root: the `source` of keras-wrn's own weights is relative to it.
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# Per-channel mean and std of RGB pixels 0-255 (the official code's CIFAR
# statistics; torchvision's ImageNet ones, (0.485, 0.456, 0.406) * 255 ...).
CIFAR_MEAN = (125.3, 123.0, 113.9)
CIFAR_STD = (63.0, 62.1, 66.7)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class UnknownWeightsError(InvalidArgumentError):
    """A weights tag that the table does not hold for the model."""


class WeightsFileError(InvalidArgumentError):
    """A table's weights file that is missing or does not match its SHA-256."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """`(x - mean) / std` per channel on RGB pixels 0-255, what the weights
    were trained on. Its dict form is what a model's `include_preprocessing`
    takes and what its config stores."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if len(self.mean) != len(self.std) or not self.mean or any(s <= 0 for s in self.std):
            raise InvalidArgumentError(
                f"A preprocessing needs one mean and one positive std per channel. "
                f"Received: mean={self.mean!r}, std={self.std!r}")

    def to_dict(self):
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, config):
        if not isinstance(config, Mapping) or set(config) != {"mean", "std"}:
            raise InvalidArgumentError(
                f"include_preprocessing must be True, False or {{'mean': [...], 'std': [...]}} (per-channel "
                f"statistics of pixels 0-255). Received: include_preprocessing={config!r}")
        return cls(tuple(float(v) for v in config["mean"]), tuple(float(v) for v in config["std"]))


CIFAR_PREPROCESSING = Preprocessing(CIFAR_MEAN, CIFAR_STD)
IMAGENET_PREPROCESSING = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)


def _unit(mean, std):
    """Statistics of pixels in [0, 1] as statistics of pixels 0-255."""
    return Preprocessing(tuple(255.0 * m for m in mean), tuple(255.0 * s for s in std))


# The normalisations models in use carry, by name (`include_preprocessing=
# "cifar10"`): the official WRN code's CIFAR statistics; the CIFAR-10 and
# CIFAR-100 constants of RobustBench's DMWideResNet (and most PyTorch CIFAR
# code); torchvision's ImageNet ones; `2x - 1` on [0, 1] pixels; and
# pixels / 255 (models trained on [0, 1] inputs without normalisation).
NORMALIZATIONS = {
    "wrn-cifar": CIFAR_PREPROCESSING,
    "cifar10": _unit((0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)),
    "cifar100": _unit((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": IMAGENET_PREPROCESSING,
    "minus_one_to_one": _unit((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "zero_to_one": _unit((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def named_normalization(name):
    """The `Preprocessing` of a name of `NORMALIZATIONS`; others are refused,
    listing them."""
    if name not in NORMALIZATIONS:
        raise InvalidArgumentError(
            f"Unknown normalisation {name!r}. Named ones: {', '.join(NORMALIZATIONS)} (or pass "
            f"{{'mean': [...], 'std': [...]}} per channel, pixels 0-255). Received: include_preprocessing={name!r}")
    return NORMALIZATIONS[name]


@dataclasses.dataclass(frozen=True)
class Weights:
    """Weights a registered model can be built with: `weights=tag`."""

    model: str  # registry name, e.g. "wrn-16-8"
    tag: str  # e.g. "cifar10", "imagenet"
    source: str  # repository path of a layer-weights .npz, or the URL of a PyTorch checkpoint
    sha256: str  # full hex digest, or its first 8 digits for a URL (in the file name)
    classes: str  # "cifar10" or "imagenet-1k": names the class list
    num_classes: int
    input_size: int
    preprocessing: Preprocessing
    metrics: Mapping[str, float]  # measured with these weights; the description says on what
    description: str
    card: str  # the training record (repository path) or the publisher's page

    @property
    def is_url(self):
        return self.source.startswith(("https://", "http://"))

    @property
    def filename(self):
        return self.source.rsplit("/", 1)[-1]

    @property
    def class_names(self):
        return class_names(self.classes)

    def local_path(self, root=None):
        """The checked path of a repository file (not for URL sources)."""
        path = os.path.join(root or REPOSITORY_ROOT, self.source)
        if not os.path.isfile(path):
            raise WeightsFileError(
                f"weights={self.tag!r} for {self.model} are keras-wrn's own trained weights, kept in the "
                f"repository's {self.source} (not in the installed package), and {path!r} does not exist. "
                f"Use a clone of the keras-wrn repository (pip install -e .), or copy that file and pass "
                f"weights='<path to the .npz>'.")
        digest = sha256_file(path)
        if digest != self.sha256:
            raise WeightsFileError(
                f"{path!r} does not match the recorded SHA-256 of the {self.tag!r} weights of {self.model} "
                f"({digest[:12]} != {self.sha256[:12]}); the file is damaged or was replaced. Restore "
                f"{self.source} from the keras-wrn repository (git checkout -- {self.source}).")
        return path

    def to_dict(self):
        """Plain JSON types (`keras-wrn models --json`)."""
        record = dataclasses.asdict(self)
        record["preprocessing"] = self.preprocessing.to_dict()
        record["metrics"] = dict(self.metrics)
        return record


@functools.cache
def class_names(classes):
    """The class names of a `Weights.classes` key, in the classifier's order."""
    if classes == "cifar10":
        return CIFAR10_CLASSES
    if classes == "imagenet-1k":
        import json
        from importlib import resources

        text = resources.files("keras_wrn.models").joinpath("imagenet_classes.json").read_text()
        return tuple(json.loads(text))
    raise InvalidArgumentError(f"Unknown class list {classes!r}; known: cifar10, imagenet-1k.")


_WEIGHTS: dict[tuple[str, str], Weights] = {}
_converter = None


def set_converter(function):
    """Plugs in `function(source) -> path of a layer-weights .npz`, which
    `converted_file` calls for a `Weights` record with a URL or the path of
    a PyTorch checkpoint (`keras_wrn/__init__.py` plugs in
    `keras_wrn.convert.pretrained.layer_weights_file`). Returns `function`."""
    global _converter
    _converter = function
    return function


def converted_file(source):
    """The layer-weights file the plugged-in converter makes of `source`."""
    if _converter is None:
        raise InvalidArgumentError(
            f"No converter is plugged in for {source!r} (a published or PyTorch checkpoint); import keras_wrn, "
            f"which plugs in keras_wrn.convert, before building the model.")
    return _converter(source)


def register_weights(entry):
    """Adds a `Weights` record to the table; returns it."""
    key = (entry.model, entry.tag)
    if key in _WEIGHTS:
        raise InvalidArgumentError(f"Weights {entry.tag!r} for {entry.model} are already registered.")
    _WEIGHTS[key] = entry
    return entry


def unregister_weights(model, tag):
    """Removes a record (for records registered by tests or plugins)."""
    _WEIGHTS.pop((model, tag), None)


def list_weights(model=None):
    """The `Weights` records, in table order; of one registry name if given."""
    return [entry for (name, _), entry in _WEIGHTS.items() if model is None or name == model]


def is_weights_tag(model, tag):
    return isinstance(tag, str) and (model, tag) in _WEIGHTS


def get_weights(model, tag):
    """The `Weights` of `tag` for the registry name `model`; raises
    UnknownWeightsError listing every model's tags."""
    if is_weights_tag(model, tag):
        return _WEIGHTS[(model, tag)]
    known = {}
    for name, known_tag in _WEIGHTS:
        known.setdefault(name, []).append(known_tag)
    listed = "; ".join(f"{name}: {', '.join(tags)}" for name, tags in known.items())
    raise UnknownWeightsError(
        f"No weights {tag!r} for {model}. Weights by model: {listed}. Or pass a PyTorch checkpoint "
        f"(.pth, .safetensors) or a keras_wrn .weights.h5 / .keras / .npz file. Received: weights={tag!r}")


_TORCHVISION = "https://download.pytorch.org/models/"
_TORCHVISION_V2 = ("torchvision's improved recipe (long schedule, strong augmentation); evaluated at resize 232, "
                   "centre crop 224")
_TORCHVISION_V1 = "torchvision's original recipe; evaluated at resize 256, centre crop 224"


def _imagenet(model, tag, url, top1, top5, description, card):
    register_weights(Weights(
        model=model, tag=tag, source=url, sha256=url.rsplit("-", 1)[-1].split(".")[0], classes="imagenet-1k",
        num_classes=1000, input_size=224, preprocessing=IMAGENET_PREPROCESSING,
        metrics={"imagenet_top1_accuracy": top1, "imagenet_top5_accuracy": top5}, description=description,
        card=card))


register_weights(Weights(
    model="wrn-16-8", tag="cifar10",
    source="exported/cifar10-wrn-16-8/wrn-16-8-cifar10.weights.npz",
    sha256="94e01d1599edc5cbf4e8f5872466c0a34672fd9d09751daf4afe357a8f5cdbcf",
    classes="cifar10", num_classes=10, input_size=32, preprocessing=CIFAR_PREPROCESSING,
    # keras-wrn evaluate (float32 weights) on the 10,000 test images of the JPEG copy it was trained on;
    # the raw-pixel test (tests/models/test_weights.py) scores 94.10% on 1,017 original test images.
    metrics={"cifar10_jpeg_test_error": 0.0748, "cifar10_exact_1017_accuracy": 0.9410},
    description="keras-wrn, the paper's recipe (200 epochs, no dropout) on a JPEG copy of CIFAR-10 "
                "(50,000 / 10,000 images), mean/std; float16 layer weights",
    card="exported/cifar10-wrn-16-8/TRAINING.md",
))
_imagenet("wrn-50-2-bottleneck", "imagenet", _TORCHVISION + "wide_resnet50_2-9ba9bcbe.pth", 81.602, 95.758,
          f"torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V2: {_TORCHVISION_V2}",
          "https://pytorch.org/vision/stable/models/generated/torchvision.models.wide_resnet50_2.html")
_imagenet("wrn-50-2-bottleneck", "imagenet-v1", _TORCHVISION + "wide_resnet50_2-95faca4d.pth", 78.468, 94.086,
          f"torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V1: {_TORCHVISION_V1}",
          "https://pytorch.org/vision/stable/models/generated/torchvision.models.wide_resnet50_2.html")
_imagenet("wrn-50-2-bottleneck", "imagenet-paper",
          "https://s3.amazonaws.com/modelzoo-networks/wide-resnet-50-2-export-5ae25d50.pth", 78.1, 93.97,
          "the paper's WRN-50-2-bottleneck export (szagoruyko/functional-zoo), BN folded into the convolutions; "
          "Table 8: 21.9% top-1, 6.03% top-5 error",
          "https://github.com/szagoruyko/functional-zoo")
_imagenet("wrn-101-2-bottleneck", "imagenet", _TORCHVISION + "wide_resnet101_2-d733dc28.pth", 82.510, 96.020,
          f"torchvision Wide_ResNet101_2_Weights.IMAGENET1K_V2: {_TORCHVISION_V2}",
          "https://pytorch.org/vision/stable/models/generated/torchvision.models.wide_resnet101_2.html")
_imagenet("wrn-101-2-bottleneck", "imagenet-v1", _TORCHVISION + "wide_resnet101_2-32ee1156.pth", 78.848, 94.284,
          f"torchvision Wide_ResNet101_2_Weights.IMAGENET1K_V1: {_TORCHVISION_V1}",
          "https://pytorch.org/vision/stable/models/generated/torchvision.models.wide_resnet101_2.html")
