"""The one registry of named Wide ResNets.

Every canonical name (`wrn-28-10`, `wrn-50-2-bottleneck`, ...) maps to a
`ModelSpec`: the builder and its arguments, and metadata a user can trust:
trainable parameters and multiply-accumulates per image (pinned here and
checked against the built models by the tests), the input size, and the
test errors the paper reports, with their table.

Naming: `wrn-{depth}-{k}` for the CIFAR networks with B(3,3) blocks and no
dropout, the paper's block and the way robustness and distillation papers
name them (`wrn-34-10`, `wrn-40-2`); `-dropout` adds dropout between the
convolutions (0.3, the CIFAR rate; pass `dropout_rate=0.4` for the paper's
SVHN runs); `-b131` etc. name the block types of Table 2; `-l1`, `-l3`,
`-l4` the deepening factors of Table 3. A variant in use today adds its
source project (`keras_wrn.models.variants`): `wrn-70-16-deepmind`,
`wrn-28-2-fixmatch`, `wrn-28-2-torchssl`, `wrn-28-2-usb`, `wrn-28-10-sam`.
ImageNet: `wrn-50-2-bottleneck`, `wrn-101-2-bottleneck`, and
`wrn-{18,34}-{w}-imagenet` for the wide non-bottleneck networks of Table 7
(a bare `wrn-34-2` could be either family, so it is refused with both
candidates).

Each spec also says what its users do with it (`uses`: the paper,
robustness, semi-supervised, distillation, anomaly detection, optimisers)
and whose code it reproduces (`source`, a name of `variants.SOURCES`).
"""

import dataclasses
import difflib
import fnmatch
import importlib
import re
from typing import Any, Mapping

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import weights as weights_table
from keras_wrn.models.variants import SOURCES

FAMILIES = ("cifar", "imagenet")
# What a model's users do with it, in the order `keras-wrn models --uses` groups them.
USES = ("paper", "robustness", "semi-supervised", "distillation", "anomaly detection", "optimisers")


class UnknownModelError(InvalidArgumentError, KeyError):
    """A model name that is not in the registry."""


@dataclasses.dataclass(frozen=True)
class PaperResult:
    """One test error the paper reports for a model, in %."""

    dataset: str  # "cifar10", "cifar100", "svhn" or "imagenet"
    error: float  # top-1 error
    table: str  # e.g. "Table 4"
    top5_error: float | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered model: how to build it and what it is."""

    name: str
    # "module:function", imported only when the model is built, so that the
    # registry (`keras-wrn models`, the CLI's choices) reads without Keras.
    builder: str
    kwargs: Mapping[str, Any]
    family: str  # one of FAMILIES
    description: str
    num_classes: int
    input_size: int
    params: int  # trainable, with `num_classes` classes
    macs: int  # per image at `input_size`
    paper: tuple[PaperResult, ...] = ()
    uses: tuple[str, ...] = ("paper",)  # of USES
    source: str = "paper"  # a name of variants.SOURCES: whose code the model reproduces

    def __post_init__(self):
        unknown = [use for use in self.uses if use not in USES] + ([] if self.source in SOURCES else [self.source])
        if unknown:
            raise InvalidArgumentError(f"{self.name}: unknown uses or source {unknown}; uses are {USES}, "
                                       f"sources {tuple(SOURCES)}.")

    def build(self, **overrides):
        """Builds the model; `overrides` replace any builder argument."""
        module, _, function = self.builder.partition(":")
        builder = getattr(importlib.import_module(module), function)
        arguments = {"num_classes": self.num_classes, **self.kwargs, **overrides}
        return builder(**arguments)

    def paper_result(self, dataset, table=None):
        """The paper's `PaperResult` on `dataset` (the first listed, or the
        one of `table`), or None."""
        for result in self.paper:
            if result.dataset == dataset and (table is None or result.table == table):
                return result
        return None

    def paper_error(self, dataset, table=None):
        """The paper's top-1 error in % on `dataset`, or None."""
        result = self.paper_result(dataset, table)
        return None if result is None else result.error

    @property
    def weights(self):
        """The `Weights` records this model can be built with (`weights=tag`)."""
        return weights_table.list_weights(self.name)

    def to_dict(self):
        """The metadata as plain JSON types (`keras-wrn models --json`)."""
        return {
            "name": self.name,
            "family": self.family,
            "uses": list(self.uses),
            "source": self.source,
            "source_projects": SOURCES[self.source].projects,
            "description": self.description,
            "input_size": self.input_size,
            "num_classes": self.num_classes,
            "params": self.params,
            "macs": self.macs,
            "paper": [dataclasses.asdict(result) for result in self.paper],
            "weights": [entry.to_dict() for entry in self.weights],
        }


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec):
    if spec.name in _REGISTRY:
        raise InvalidArgumentError(f"A model named {spec.name!r} is already registered.")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(pattern=None, family=None, pretrained=False, use=None):
    """Canonical model names, in registry order; `pattern` is a shell-style
    filter (`"wrn-28-*"`), `family` `"cifar"` or `"imagenet"`; `pretrained`
    keeps those with weights in the table (`keras_wrn.models.weights`);
    `use` one of `USES` (`"robustness"`, `"semi-supervised"`, ...)."""
    if use is not None and use not in USES:
        raise InvalidArgumentError(f"Unknown use {use!r}; valid: {', '.join(USES)}. Received: use={use!r}")
    return [
        name
        for name, spec in _REGISTRY.items()
        if (pattern is None or fnmatch.fnmatch(name, pattern))
        and (family is None or spec.family == family)
        and (not pretrained or spec.weights)
        and (use is None or use in spec.uses)
    ]


def _ambiguous(key):
    """A message for a name that could mean more than one network, listing
    the candidates, or None: `wrn-34-2` is the ImageNet WRN-34 of Table 7
    (`wrn-34-2-imagenet`) or a CIFAR WRN-34-2 (`WideResNet(depth=34, k=2)`)."""
    candidates = [name for name in _REGISTRY if name.startswith(f"{key}-") and name.endswith("-imagenet")]
    match = re.fullmatch(r"wrn-(\d+)-(\d+(?:\.\d+)?)", str(key))
    if not candidates or not match:
        return None
    depth, k = int(match.group(1)), match.group(2)
    cifar = f"keras_wrn.WideResNet(depth={depth}, k={k}) (a CIFAR WRN-{depth}-{k})" if (depth - 4) % 6 == 0 else ""
    choices = [f"{c} (ImageNet, Table 7)" for c in candidates] + ([cifar] if cifar else [])
    what = "is ambiguous" if len(choices) > 1 else "is not registered"
    return f"The model name {key!r} {what}: the ImageNet networks of Table 7 are named with '-imagenet'. " \
           f"Candidates: {', '.join(choices)}. Received: name={key!r}"


def get_model_spec(name):
    """The `ModelSpec` of a canonical name; raises `UnknownModelError`
    listing the valid names (or, for an ambiguous name, the candidates)."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _REGISTRY:
        ambiguous = _ambiguous(key)
        if ambiguous:
            raise UnknownModelError(ambiguous)
        close = difflib.get_close_matches(str(key), list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Registered models: "
            f"{', '.join(_REGISTRY)}. Received: name={name!r}"
        )
    return _REGISTRY[key]


def get_model(name, **overrides):
    """Builds a registered model: `get_model("wrn-28-10", num_classes=100)`.

    `overrides` replace any argument of the builder (`num_classes`,
    `dropout_rate`, `input_shape`, `include_top`, `weights`, ...).
    """
    return get_model_spec(name).build(**overrides)


def _cifar(name, depth, k, params, macs, paper=(), description="", uses=("paper",), source="paper", **kwargs):
    register_model(
        ModelSpec(
            name=name,
            builder="keras_wrn.models.cifar:WideResNet",
            kwargs={"depth": depth, "k": k, **SOURCES[source].options, **kwargs},
            family="cifar",
            description=description or f"WRN-{depth}-{k}",
            num_classes=10,
            input_size=32,
            params=params,
            macs=macs,
            paper=tuple(paper),
            uses=tuple(uses),
            source=source,
        )
    )


def _imagenet(name, builder, params, macs, paper=(), description="", uses=("paper",), **kwargs):
    register_model(
        ModelSpec(
            name=name,
            builder=f"keras_wrn.models.imagenet:{builder}",
            kwargs=kwargs,
            family="imagenet",
            description=description,
            num_classes=1000,
            input_size=224,
            params=params,
            macs=macs,
            paper=tuple(paper),
            uses=tuple(uses),
        )
    )


def _results(table, cifar10=None, cifar100=None, svhn=None, note=""):
    found = (("cifar10", cifar10), ("cifar100", cifar100), ("svhn", svhn))
    return [PaperResult(d, e, table, note=note) for d, e in found if e is not None]


_T4 = "ZCA whitening, no dropout, median of 5"
_T5 = "mean/std, no dropout, median of 5"
_T6 = "mean/std, median of 5"

# Table 4 (width), Table 5 (against thin ResNets), Table 6 (dropout).
_cifar("wrn-16-4", 16, 4, 2_748_890, 392_612_352,
       _results("Table 6", 5.02, 24.03, 1.85, _T6))
_cifar("wrn-16-8", 16, 8, 10_961_370, 1_548_145_664,
       _results("Table 4", 4.81, 22.07, note=_T4) + _results("Table 5", 4.27, 20.43, note=_T5))
_cifar("wrn-16-10", 16, 10, 17_116_634, 2_412_173_568,
       _results("Table 4", 4.56, 21.59, note=_T4))
_cifar("wrn-22-8", 22, 8, 17_158_106, 2_454_115_328,
       _results("Table 4", 4.38, 21.22, note=_T4))
_cifar("wrn-22-10", 22, 10, 26_797_914, 3_827_751_168,
       _results("Table 4", 4.44, 20.75, note=_T4))
_cifar("wrn-28-10", 28, 10, 36_479_194, 5_243_328_768,
       _results("Table 4", 4.17, 20.50, note=_T4) + _results("Table 5", 4.00, 19.25, note=_T5),
       uses=("paper", "robustness", "optimisers"))
_cifar("wrn-28-12", 28, 12, 52_517_850, 7_543_905_792,
       _results("Table 4", 4.33, 20.43, note=_T4))
_cifar("wrn-40-1", 40, 1, 563_930, 83_280_512,
       _results("Table 4", 6.85, 30.89, note=_T4), uses=("paper", "distillation"))
_cifar("wrn-40-2", 40, 2, 2_243_546, 327_599_360,
       _results("Table 4", 5.33, 26.04, note=_T4) + _results("Table 3", 5.43, note="l = 2"),
       uses=("paper", "distillation"))
_cifar("wrn-40-4", 40, 4, 8_949_210, 1_298_582_016,
       _results("Table 4", 4.97, 22.89, note=_T4) + _results("Table 5", 4.53, 21.18, note=_T5))
_cifar("wrn-40-8", 40, 8, 35_748_314, 5_172_024_320,
       _results("Table 4", 4.66, note=_T4))
_cifar("wrn-52-1", 52, 1, 758_362, 111_592_064,
       _results("Table 6", 6.43, 29.89, 2.08, _T6))

_DROPOUT = "dropout 0.3 between convolutions (the paper uses 0.4 on SVHN)"
_cifar("wrn-16-4-dropout", 16, 4, 2_748_890, 392_612_352,
       _results("Table 6", 5.24, 23.91, 1.64, _T6), f"WRN-16-4, {_DROPOUT}", dropout_rate=0.3)
_cifar("wrn-16-8-dropout", 16, 8, 10_961_370, 1_548_145_664,
       _results("Table 9", svhn=1.54, note="best SVHN model, dropout 0.4"),
       "WRN-16-8, dropout 0.4 between convolutions (the paper's best SVHN model)",
       dropout_rate=0.4)
_cifar("wrn-28-10-dropout", 28, 10, 36_479_194, 5_243_328_768,
       _results("Table 6", 3.89, 18.85, note=_T6), f"WRN-28-10, {_DROPOUT}", dropout_rate=0.3)
_cifar("wrn-40-10-dropout", 40, 10, 55_841_754, 8_074_483_968,
       _results("Table 9", 3.8, 18.3, note="best CIFAR models"), f"WRN-40-10, {_DROPOUT}",
       dropout_rate=0.3)
_cifar("wrn-52-1-dropout", 52, 1, 758_362, 111_592_064,
       _results("Table 6", 6.28, 29.78, 1.70, _T6), f"WRN-52-1, {_DROPOUT}", dropout_rate=0.3)

# Table 2 (block types, k = 2; CIFAR-10, median of 5) and Table 3 (l).
_cifar("wrn-28-2", 28, 2, 1_467_610, 214_353_152,
       _results("Table 2", 5.73), "WRN-28-2, B(3,3)")
_cifar("wrn-22-2-b313", 22, 2, 1_145_498, 167_167_232,
       _results("Table 2", 5.78), "WRN-22-2 with B(3,1,3) blocks", block_type="B(3,1,3)")
_cifar("wrn-40-2-b131", 40, 2, 1_429_082, 208_061_696,
       _results("Table 2", 6.06), "WRN-40-2 with B(1,3,1) blocks", block_type="B(1,3,1)")
_cifar("wrn-40-2-b13", 40, 2, 1_297_370, 189_187_328,
       _results("Table 2", 6.42), "WRN-40-2 with B(1,3) blocks", block_type="B(1,3)")
_cifar("wrn-40-2-b31", 40, 2, 1_211_354, 176_604_416,
       _results("Table 2", 5.78), "WRN-40-2 with B(3,1) blocks", block_type="B(3,1)")
_cifar("wrn-40-2-b311", 40, 2, 1_343_066, 195_478_784,
       _results("Table 2", 5.86), "WRN-40-2 with B(3,1,1) blocks", block_type="B(3,1,1)")
for _l, _error in ((1, 6.69), (3, 5.65), (4, 5.93)):
    _cifar(f"wrn-40-2-l{_l}", 40, 2, 2_243_546, 327_599_360,
           _results("Table 3", _error, note=f"l = {_l}"),
           f"WRN-40-2 with l = {_l} 3x3 convolutions per block", deepening_factor=_l)

# The variants in use today (keras_wrn.models.variants), named after their
# source where their function differs from the paper's.
# (depth, k, params, MACs, what its users do with it, who names it so)
_XTERNALZ = ((16, 1, 175_066, 26_657_408, "distillation", "a distillation student (RepDistiller, mdistiller)"),
             (16, 2, 691_674, 101_106_944, "distillation", "a distillation student (RepDistiller, mdistiller)"),
             (34, 10, 46_160_474, 6_658_906_368, "robustness", "the robustness papers' network (TRADES, RobustBench)"),
             (34, 20, 184_531_674, 26_581_856_768, "robustness", "RobustBench's TRADES-family models"))
for _depth, _k, _params, _macs, _use, _who in _XTERNALZ:
    _cifar(f"wrn-{_depth}-{_k}", _depth, _k, _params, _macs, description=f"WRN-{_depth}-{_k}, {_who}",
           uses=(_use,), source="xternalz")
for _depth, _k, _params, _macs in ((28, 10, 36_479_194, 5_243_328_768), (70, 16, 266_796_506, 38_764_210_176)):
    _cifar(f"wrn-{_depth}-{_k}-deepmind", _depth, _k, _params, _macs,
           description=f"WRN-{_depth}-{_k}, DeepMind's robust WRN (SiLU, 'same' padding; RobustBench DMWideResNet)",
           uses=("robustness",), source="deepmind")
# Parameters with biases (fixmatch, usb) and without the unused first batch
# norm of groups 2 and 3 (torchssl); MACs: (params, torchssl params, MACs).
_SSL = {2: (1_469_642, 1_469_450, 214_353_152), 8: (23_362_922, 23_362_154, 3_360_084_992)}
for _k, (_params, _torchssl_params, _macs) in _SSL.items():
    _cifar(f"wrn-28-{_k}-fixmatch", 28, _k, _params, _macs,
           description=f"WRN-28-{_k} of FixMatch/MixMatch's TensorFlow code (leaky ReLU 0.1, biases, 'same')",
           uses=("semi-supervised",), source="fixmatch")
    _cifar(f"wrn-28-{_k}-torchssl", 28, _k, _torchssl_params, _macs,
           description=f"WRN-28-{_k} of TorchSSL (leaky ReLU 0.1, biases; raw input into groups 2 and 3)",
           uses=("semi-supervised",), source="torchssl")
    _cifar(f"wrn-28-{_k}-usb", 28, _k, _params, _macs,
           description=f"WRN-28-{_k} of USB/semilearn (leaky ReLU 0.1, biases, BN eps 1e-3)",
           uses=("semi-supervised",), source="usb")
_cifar("wrn-28-10-sam", 28, 10, 36_220_634, 5_214_492_928,
       description="WRN-28-10 of SAM's Flax code (parameter-free pool-and-pad shortcut, 'same' padding)",
       uses=("optimisers",), source="sam")

# ImageNet: Table 8 (bottleneck) and Table 7 (wide non-bottleneck).
_imagenet("wrn-50-2-bottleneck", "WideResNet50_2", 68_883_240, 11_398_021_120,
          [PaperResult("imagenet", 21.9, "Table 8", 6.03, "single crop")],
          "WRN-50-2-bottleneck (torchvision wide_resnet50_2; PatchCore's backbone)",
          uses=("paper", "anomaly detection"))
_imagenet("wrn-101-2-bottleneck", "WideResNet101_2", 126_886_696, 22_753_050_624,
          description="WRN-101-2-bottleneck (torchvision wide_resnet101_2; not in the paper)")
_T7 = {
    18: {1.0: (11_689_512, 1_814_073_344, 30.4, 10.93), 1.5: (25_875_816, 3_866_327_040, 27.06, 9.0),
         2.0: (45_618_216, 6_695_706_624, 25.58, 8.06), 3.0: (101_783_976, 14_724_378_624, 24.06, 7.33)},
    34: {1.0: (21_797_672, 3_663_761_408, 26.77, 8.67), 1.5: (48_613_608, 8_028_125_184, 24.5, 7.58),
         2.0: (86_036_008, 14_094_458_880, 23.39, 7.00)},
}
for _depth, _widths in _T7.items():
    for _w, (_params, _macs, _top1, _top5) in _widths.items():
        _imagenet(f"wrn-{_depth}-{_w:g}-imagenet", f"WideResNet{_depth}",
                  _params, _macs, [PaperResult("imagenet", _top1, "Table 7", _top5, "single crop")],
                  f"Wide non-bottleneck WRN-{_depth} at width {_w:g}", width=_w)
