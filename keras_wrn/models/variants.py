"""The CIFAR WRN variants in use today: the options that tell them apart,
and the source projects that use each combination.

The 2016 paper's network (its official code) is one point in a small space
of choices that later projects made differently. Each choice is a
constructor argument of `keras_wrn.WideResNet` (and of every registered CIFAR
model), defaulting to the paper's; `BlockStyle` holds the ones the blocks
read, checked before any layer is built. Read from each project's code:

    source        activation     bn mom./eps    biases      padding    shortcut
    paper         relu           0.9 / 1e-5     none        symmetric  projection
    xternalz      relu           0.9 / 1e-5     none        symmetric  projection
    deepmind      silu           0.9 / 1e-5     none        same       projection
    fixmatch      leaky 0.1      0.999 / 1e-3   all convs   same       raw_projection
    fixmatch-torch leaky 0.1     0.999 / 1e-5   none        symmetric  raw_input
    torchssl      leaky 0.1      0.999 / 1e-3   all convs   symmetric  raw_input
    usb           leaky 0.1      0.999 / 1e-3   all convs   symmetric  projection
    sam           relu           0.9 / 1e-5     none        same       pool_pad

(Batch-norm momentum in Keras' convention: PyTorch's 0.001 is Keras' 0.999;
TensorFlow's `momentum=0.999` is the same number. "All convs": the stem,
the block convolutions and the 1x1 projection.)

Shortcut forms, for the blocks whose channel count or stride changes (the
first block of each group); every other block adds its raw input:

- `projection` (the paper, xternalz, DeepMind, USB): BN-activation first; the
  first convolution and a 1x1 projection both read the activated tensor.
- `raw_projection` (FixMatch/MixMatch's TensorFlow code,
  `activate_before_residual` only in the first block of the network): as
  `projection` in the network's first block; in groups 2 and 3 the
  projection reads the raw input, the first convolution the activated one.
- `raw_input` (the PyTorch ports: kekmodel/FixMatch-pytorch, TorchSSL): as
  `projection` in the network's first block; in groups 2 and 3 the first
  convolution and the projection both read the raw input, so that block's
  first batch norm is never used (PyTorch keeps its parameters; the Keras
  model has no such layer, and its parameter count is smaller by them).
- `pool_pad` (google-research/sam's Flax WRN): no parameters: average pooling
  by the stride, then zero channels appended, on the activated input in the
  network's first block and on the raw input elsewhere.

Padding: `symmetric` pads `kernel_size // 2` on every side (PyTorch);
`same` is TensorFlow's, which for a stride-2 3x3 convolution on an even
input pads one row and column at the bottom and right only (DeepMind's
PyTorch port pads `(0, 1, 0, 1)` by hand to match it).
Keras-free: the registry and the converter read it without building.
"""

import dataclasses
import difflib

from keras_wrn.errors import InvalidArgumentError

ACTIVATIONS = ("relu", "silu", "leaky_relu")
ACTIVATION_ALIASES = {"swish": "silu"}
PADDINGS = ("symmetric", "same")
SHORTCUTS = ("projection", "raw_projection", "raw_input", "pool_pad")


def _choice(argument, value, valid, aliases=None):
    key = value.strip().lower() if isinstance(value, str) else value
    key = (aliases or {}).get(key, key)
    if key not in valid:
        names = list(valid) + list(aliases or {})
        close = difflib.get_close_matches(str(value), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InvalidArgumentError(
            f"Unknown {argument} {value!r}.{hint} Valid: {', '.join(names)}. Received: {argument}={value!r}")
    return key


def _number(argument, value, low, high, *, open_low=True):
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    ok = ok and (low < value if open_low else low <= value) and value < high
    if not ok:
        bracket = "(" if open_low else "["
        raise InvalidArgumentError(f"{argument} must be a number in {bracket}{low}, {high}). "
                                   f"Received: {argument}={value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class BlockStyle:
    """What the CIFAR WRN's layers do, beyond depth and width; the defaults
    are the paper's. `BlockStyle.checked(**arguments)` validates and
    canonicalises (`swish` -> `silu`) before any layer is built."""

    activation: str = "relu"
    leaky_relu_slope: float = 0.1  # used by activation="leaky_relu" only
    bn_momentum: float = 0.9  # Keras' convention: 1 - PyTorch's momentum
    bn_epsilon: float = 1e-5
    stem_bias: bool = False
    conv_bias: bool = False  # the block convolutions and the 1x1 projection
    padding: str = "symmetric"
    shortcut: str = "projection"

    @classmethod
    def checked(cls, **arguments):
        activation = _choice("activation", arguments["activation"], ACTIVATIONS, ACTIVATION_ALIASES)
        slope = _number("leaky_relu_slope", arguments["leaky_relu_slope"], 0.0, 1.0, open_low=False)
        if activation != "leaky_relu" and slope != cls.leaky_relu_slope:
            raise InvalidArgumentError(
                f"leaky_relu_slope applies to activation='leaky_relu' only; pass activation='leaky_relu' or leave "
                f"the slope at {cls.leaky_relu_slope}. Received: activation={arguments['activation']!r}, "
                f"leaky_relu_slope={arguments['leaky_relu_slope']!r}")
        for flag in ("stem_bias", "conv_bias"):
            if not isinstance(arguments[flag], bool):
                raise InvalidArgumentError(f"{flag} must be True or False. Received: {flag}={arguments[flag]!r}")
        return cls(
            activation=activation,
            leaky_relu_slope=slope,
            bn_momentum=_number("bn_momentum", arguments["bn_momentum"], 0.0, 1.0, open_low=False),
            bn_epsilon=_number("bn_epsilon", arguments["bn_epsilon"], 0.0, 1.0),
            stem_bias=arguments["stem_bias"],
            conv_bias=arguments["conv_bias"],
            padding=_choice("padding", arguments["padding"], PADDINGS),
            shortcut=_choice("shortcut", arguments["shortcut"], SHORTCUTS),
        )

    def to_config(self):
        return dataclasses.asdict(self)

    def differences(self):
        """The options that differ from the paper's, as `{name: value}`."""
        paper = BlockStyle()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(paper, f.name)}


PAPER_STYLE = BlockStyle()


@dataclasses.dataclass(frozen=True)
class Source:
    """A project whose WRNs a variant reproduces: the `BlockStyle` options it
    uses (on top of the paper's) and the input normalisation its models
    carry or its pipeline applies (`None`: the caller's to say)."""

    name: str
    projects: str
    options: dict
    normalization: str | None
    reference: str  # the file the options were read from


SOURCES = {
    source.name: source for source in (
        Source("paper", "Zagoruyko & Komodakis 2016 (the official code)", {}, "wrn-cifar",
               "szagoruyko/wide-residual-networks pytorch/resnet.py"),
        Source("xternalz", "RobustBench's TRADES-family models, RepDistiller/CRD, mdistiller", {}, None,
               "xternalz/WideResNet-pytorch wideresnet.py"),
        Source("deepmind", "RobustBench's DMWideResNet (Gowal et al., Rebuffi et al.)",
               {"activation": "silu", "padding": "same"}, None,
               "RobustBench robustbench/model_zoo/architectures/dm_wide_resnet.py"),
        Source("fixmatch", "FixMatch, MixMatch, ReMixMatch (TensorFlow)",
               {"activation": "leaky_relu", "bn_momentum": 0.999, "bn_epsilon": 1e-3, "stem_bias": True,
                "conv_bias": True, "padding": "same", "shortcut": "raw_projection"}, None,
               "google-research/fixmatch libml/models.py"),
        Source("fixmatch-torch", "FixMatch's PyTorch port (kekmodel/FixMatch-pytorch)",
               {"activation": "leaky_relu", "bn_momentum": 0.999, "shortcut": "raw_input"}, None,
               "kekmodel/FixMatch-pytorch models/wideresnet.py"),
        Source("torchssl", "TorchSSL (FlexMatch and its baselines)",
               {"activation": "leaky_relu", "bn_momentum": 0.999, "bn_epsilon": 1e-3, "stem_bias": True,
                "conv_bias": True, "shortcut": "raw_input"}, None,
               "TorchSSL/TorchSSL models/nets/wrn.py"),
        Source("usb", "USB (microsoft/Semi-supervised-learning), semilearn",
               {"activation": "leaky_relu", "bn_momentum": 0.999, "bn_epsilon": 1e-3, "stem_bias": True,
                "conv_bias": True}, None,
               "microsoft/Semi-supervised-learning semilearn/nets/wrn/wrn.py"),
        Source("sam", "SAM's Flax WRN (google-research/sam)",
               {"padding": "same", "shortcut": "pool_pad"}, None,
               "google-research/sam sam_jax/models/wide_resnet.py"),
    )
}


def get_source(name):
    """The `Source` of a project name; unknown names list the valid ones."""
    key = _choice("source", name, tuple(SOURCES))
    return SOURCES[key]
