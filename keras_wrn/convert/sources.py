"""What a checkpoint's `--source` says that its keys cannot: the function.

A key layout (`mapping.LAYOUTS`) places tensors; several projects share one
layout with different forwards (the xternalz names: xternalz's own WRN,
FixMatch's PyTorch port, TorchSSL and USB). `--source` names the project,
and with it the forward (`keras_wrn.models.variants.SOURCES`): activation,
batch-norm epsilon, padding, shortcut form. What the file does say is read
from it: depth and width (blocks and channels), biases, classes, and
DMWideResNet's `mean`/`std` buffers where a file carries them. Nothing is
guessed from key names; what the file contradicts is refused in one line.

    source          key layout          forward (variants.SOURCES)   projects
    xternalz        xternalz            xternalz (the paper's block) TRADES/RobustBench, RepDistiller, mdistiller, NAD
    fixmatch-torch  xternalz            fixmatch-torch               kekmodel/FixMatch-pytorch
    torchssl        xternalz            torchssl                     TorchSSL
    usb             xternalz            usb                          USB / semilearn
    deepmind        deepmind            deepmind                     RobustBench DMWideResNet
    pytorchcv       pytorchcv           paper                        imgclsmob/pytorchcv CIFAR WRNs
    official-cifar  official-cifar      paper                        the paper's functional code
    torchvision, timm, official-imagenet: ImageNet layouts onto a registered model (`--model`).
"""

import dataclasses

from keras_wrn.convert.mapping import ConversionError, detect_layout
from keras_wrn.models.variants import PAPER_STYLE, BlockStyle
from keras_wrn.models.variants import SOURCES as VARIANTS


@dataclasses.dataclass(frozen=True)
class CheckpointSource:
    name: str
    layout: str  # a name of mapping.LAYOUTS
    variant: str | None  # a name of variants.SOURCES (CIFAR sources), None for ImageNet layouts
    projects: str
    # Whether the forward normalises inside the model with constants the
    # file may not hold (DMWideResNet), so that they must be named.
    needs_normalization: bool = False


CHECKPOINT_SOURCES = {
    source.name: source for source in (
        CheckpointSource("xternalz", "xternalz", "xternalz", VARIANTS["xternalz"].projects + ", NAD"),
        CheckpointSource("fixmatch-torch", "xternalz", "fixmatch-torch", VARIANTS["fixmatch-torch"].projects),
        CheckpointSource("torchssl", "xternalz", "torchssl", VARIANTS["torchssl"].projects),
        CheckpointSource("usb", "xternalz", "usb", VARIANTS["usb"].projects),
        CheckpointSource("deepmind", "deepmind", "deepmind", VARIANTS["deepmind"].projects, needs_normalization=True),
        CheckpointSource("pytorchcv", "pytorchcv", "paper", "imgclsmob/pytorchcv CIFAR WRNs"),
        CheckpointSource("official-cifar", "official-cifar", "paper", "the paper's functional PyTorch code"),
        CheckpointSource("torchvision", "torchvision", None, "torchvision ResNets (wide_resnet50_2, ...)"),
        CheckpointSource("timm", "torchvision", None, "timm ResNets"),
        CheckpointSource("official-imagenet", "official-imagenet", None, "the paper's WRN-50-2 export"),
    )
}


def sources_of_layout(layout):
    return [name for name, source in CHECKPOINT_SOURCES.items() if source.layout == layout]


def resolve_source(name, state):
    """The `CheckpointSource` for `--source name` (None: the file's layout,
    when only one source uses it). A layout that several sources share, or a
    source whose layout is not the file's, is refused naming those that fit."""
    layout = detect_layout(state)
    fitting = sources_of_layout(layout)
    if name is None:
        if len({CHECKPOINT_SOURCES[f].variant for f in fitting}) > 1:
            raise ConversionError(
                f"This checkpoint has the {layout} key layout, which {', '.join(fitting)} share with different "
                f"forwards (activation, shortcut, batch-norm epsilon); the file cannot say which. Pass --source "
                f"{' or --source '.join(fitting)}.")
        return CHECKPOINT_SOURCES[fitting[0]]
    if name not in CHECKPOINT_SOURCES:
        raise ConversionError(f"Unknown source {name!r}. Sources: {', '.join(CHECKPOINT_SOURCES)}. "
                              f"Received: source={name!r}")
    source = CHECKPOINT_SOURCES[name]
    if source.layout != layout:
        raise ConversionError(
            f"--source {name} expects the {source.layout} key layout; this checkpoint has the {layout} layout "
            f"(--source {' or '.join(fitting)} fits it).")
    return source


@dataclasses.dataclass(frozen=True)
class CifarArchitecture:
    """What a CIFAR WRN checkpoint says about its network."""

    depth: int
    k: int | float
    num_classes: int | None
    stem_bias: bool
    conv_bias: bool


def read_cifar_architecture(layer_weights):
    """Depth, width, classes and biases from layer weights under keras_wrn's
    CIFAR names (whatever the file's layout): N blocks per group give depth
    6N + 4; group 1's width gives k = width / 16, and groups 2 and 3 must be
    2x and 4x as wide."""
    blocks = {}
    for name in layer_weights:
        if name.startswith("group") and name.endswith("_conv1"):
            group, block = name[len("group"):].removesuffix("_conv1").split("_block")
            blocks.setdefault(int(group), set()).add(int(block))
    counts = [len(blocks.get(g, ())) for g in (1, 2, 3)]
    if not counts[0] or len(set(counts)) != 1 or any(blocks[g] != set(range(1, counts[0] + 1)) for g in (1, 2, 3)):
        raise ConversionError(
            f"The checkpoint's three groups hold {counts} blocks; a CIFAR WRN has the same number N >= 1 in each "
            f"(depth 6N + 4).")
    widths = [layer_weights[f"group{g}_block1_conv1"][0].shape[-1] for g in (1, 2, 3)]
    if widths[1] != 2 * widths[0] or widths[2] != 4 * widths[0]:
        raise ConversionError(f"The checkpoint's groups are {widths} channels wide; a WRN's are 16k, 32k, 64k.")
    k = widths[0] / 16
    return CifarArchitecture(
        depth=6 * counts[0] + 4,
        k=int(k) if k == int(k) else k,
        num_classes=int(layer_weights["predictions"][0].shape[-1]) if "predictions" in layer_weights else None,
        stem_bias=len(layer_weights["stem_conv"]) == 2,
        conv_bias=len(layer_weights["group1_block1_conv1"]) == 2,
    )


STYLE_FIELDS = tuple(f.name for f in dataclasses.fields(BlockStyle) if f.name not in ("stem_bias", "conv_bias"))


def _style_of(options):
    return {key: options.get(key, getattr(PAPER_STYLE, key)) for key in STYLE_FIELDS}


def registered_names(arguments, keys=None):
    """The registered CIFAR models (without dropout) whose `WideResNet`
    arguments equal `arguments` on `keys` (default: all of them)."""
    from keras_wrn.models.registry import get_model_spec, list_models

    def builds(spec):
        return not spec.kwargs.get("dropout_rate") and all(
            spec.kwargs.get(key, getattr(PAPER_STYLE, key, None)) == arguments[key] for key in keys or arguments)

    return [name for name in list_models(family="cifar") if builds(get_model_spec(name))]


def builder_arguments(source, architecture, model_spec=None):
    """`WideResNet` arguments for a CIFAR checkpoint: the file's depth,
    width and biases, the source's forward. With `model_spec` (a registered
    `--model`), refuses a model whose depth, width or forward differ."""
    forward = _style_of(VARIANTS[source.variant].options)
    arguments = {"depth": architecture.depth, "k": architecture.k, **forward,
                 "stem_bias": architecture.stem_bias, "conv_bias": architecture.conv_bias}
    if model_spec is None:
        return arguments
    label = f"WRN-{architecture.depth}-{architecture.k:g}"
    if model_spec.family != "cifar" or (model_spec.kwargs["depth"], model_spec.kwargs["k"]) != \
            (architecture.depth, architecture.k):
        fits = registered_names(arguments, keys=("depth", "k", *STYLE_FIELDS))
        raise ConversionError(
            f"The checkpoint holds a {label} ({(architecture.depth - 4) // 6} blocks per group, group 1 "
            f"{int(16 * architecture.k)} channels wide); --model {model_spec.name} is not one. Omit --model"
            + (f", or pass --model {' or '.join(fits)}" if fits else "") + ".")
    theirs = _style_of(model_spec.kwargs)
    differing = [f"{key}={forward[key]!r} here, {theirs[key]!r} there" for key in STYLE_FIELDS
                 if forward[key] != theirs[key]]
    if differing:
        raise ConversionError(
            f"--model {model_spec.name} computes the {model_spec.source} forward, not the {source.name} one "
            f"({'; '.join(differing)}). Omit --model to build the {source.name} {label}.")
    return arguments
