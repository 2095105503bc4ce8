"""PyTorch state dicts -> keras_wrn layer weights, one mapper per key layout:

- `torchvision` (also timm's ResNets): `conv1`, `bn1`, `layer1.0.conv1`,
  `layer1.0.bn1`, `layer1.0.downsample.0/1`, `fc`, onto the ImageNet models
  (`conv1_conv`, `conv2_block1_1_conv`, `..._0_conv`, `predictions`);
- `official-cifar`: the paper's functional PyTorch code
  (szagoruyko/wide-residual-networks, `pytorch/resnet.py`): `conv0`,
  `group0.block0.conv0`, `group0.block0.bn0.weight`, `...convdim`, `bn`,
  `fc.weight`, onto `WideResNet` (`stem_conv`, `group1_block1_conv1`,
  `group1_block1_bn1`, `..._shortcut`, `head_bn`, `predictions`);
- `official-imagenet`: the paper's WRN-50-2 export (functional-zoo,
  `wide-resnet-50-2-export-5ae25d50.pth`), whose BatchNorms are folded into
  conv biases: `conv0`, `group0.block0.conv0..2`, `group0.block0.conv_dim`,
  `fc`. Each biased conv becomes the conv plus its BatchNorm set to the
  identity with beta = bias, which computes the same function;
- `xternalz`: xternalz/WideResNet-pytorch's names, which RobustBench's
  TRADES-family models, RepDistiller, mdistiller and the semi-supervised
  PyTorch code share: `conv1`, `block{1,2,3}.layer.{i}.bn1`, `.conv1`,
  `.bn2`, `.conv2`, `.convShortcut`, `bn1`, `fc` (USB: `classifier`);
  RobustBench's unused `sub_block1.*` is dropped;
- `deepmind`: RobustBench's `DMWideResNet`: `init_conv`,
  `layer.{g}.block.{i}.batchnorm_0`, `.conv_0`, `.batchnorm_1`, `.conv_1`,
  `.shortcut`, `batchnorm`, `logits` (its `mean`/`std` buffers, when a file
  has them, are read by `convert.sources`, not mapped here);
- `pytorchcv`: imgclsmob's CIFAR WRNs: `features.init_block`,
  `features.stage{s}.unit{u}.body.conv{1,2}.bn` / `.conv`,
  `.identity_conv`, `features.post_activ.bn`, `output`.

A key layout says where each tensor goes, not what the network computes:
several projects share the xternalz names with different forwards, so the
function comes from the `--source` (`keras_wrn.convert.sources`).

The result maps Keras layer names to weight lists in Keras order: conv
kernels (kh, kw, in, out), BatchNorm [gamma, beta, moving mean, moving
variance], Dense [kernel (in, out), bias].
"""

import re

from keras_wrn.errors import InvalidArgumentError

BN_EPSILON = 1e-5  # keras_wrn's and Torch's
BN_ATTRIBUTES = ("weight", "bias", "running_mean", "running_var")


class ConversionError(InvalidArgumentError):
    """Tensors that could not be mapped, or do not fit; every one is named."""


def _modules(state):
    """{module name: {attribute: array}}; bare tensors (the official CIFAR
    convs) count as the module's `weight`."""
    modules = {}
    for key, value in state.items():
        module, _, attribute = key.rpartition(".")
        if attribute not in (*BN_ATTRIBUTES,):
            module, attribute = key, "weight"
        modules.setdefault(module, {})[attribute] = value
    return modules


def _conv(tensors):
    """Kernel (kh, kw, in, out), then the bias where the file has one."""
    return [tensors["weight"].transpose(2, 3, 1, 0)] + ([tensors["bias"]] if "bias" in tensors else [])


def _bn(tensors):
    return [tensors[a] for a in BN_ATTRIBUTES]


def _dense(tensors):
    return [tensors["weight"].T, tensors["bias"]]


def _identity_bn(bias):
    import numpy as np

    channels = len(bias)
    return [np.ones(channels, np.float32), bias.astype(np.float32), np.zeros(channels, np.float32),
            np.full(channels, 1.0 - BN_EPSILON, np.float32)]


def detect_layout(state):
    """The key layout of a state dict: a name of `LAYOUTS`."""
    keys = set(state)
    if any(k.startswith("block1.layer.0.") for k in keys) and "conv1.weight" in keys:
        return "xternalz"
    if "init_conv.weight" in keys and any(k.startswith("layer.0.block.0.") for k in keys):
        return "deepmind"
    if any(k.startswith("features.stage1.unit1.body.") for k in keys):
        return "pytorchcv"
    if any(k.startswith("layer1.") for k in keys) and "conv1.weight" in keys:
        return "torchvision"
    if "conv0.weight" in keys and "conv0.bias" in keys and "group0.block0.conv0.weight" in keys:
        return "official-imagenet"
    if "conv0" in keys and "group0.block0.conv0" in keys:
        return "official-cifar"
    shown = ", ".join(sorted(keys)[:8])
    raise ConversionError(
        f"Unrecognised checkpoint layout (first keys: {shown}). keras-wrn converts torchvision/timm "
        f"ResNets (conv1, layer1.0.conv1, ...), the paper's official functional checkpoints "
        f"(conv0, group0.block0.conv0, ...), xternalz-style CIFAR WRNs (conv1, block1.layer.0.bn1, ...), "
        f"DeepMind's (init_conv, layer.0.block.0.batchnorm_0, ...) and pytorchcv's "
        f"(features.init_block, features.stage1.unit1.body.conv1.bn, ...)."
    )


def _torchvision(module, tensors):
    if module == "conv1":
        return {"conv1_conv": _conv(tensors)}
    if module == "bn1":
        return {"conv1_bn": _bn(tensors)}
    if module == "fc":
        return {"predictions": _dense(tensors)}
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.(conv|bn)(\d)", module)
    if match:
        stage, block, kind, index = match.groups()
        name = f"conv{int(stage) + 1}_block{int(block) + 1}_{index}_{kind}"
        return {name: _conv(tensors) if kind == "conv" else _bn(tensors)}
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.downsample\.([01])", module)
    if match:
        stage, block, index = match.groups()
        prefix = f"conv{int(stage) + 1}_block{int(block) + 1}_0"
        return {f"{prefix}_conv": _conv(tensors)} if index == "0" else {f"{prefix}_bn": _bn(tensors)}
    return None


def _official_cifar(module, tensors):
    names = {"conv0": "stem_conv", "bn": "head_bn", "fc": "predictions"}
    if module in names:
        kind = {"conv0": _conv, "bn": _bn, "fc": _dense}[module]
        return {names[module]: kind(tensors)}
    match = re.fullmatch(r"group(\d+)\.block(\d+)\.(conv|bn)(\d|dim)", module)
    if match:
        group, block, kind, index = match.groups()
        prefix = f"group{int(group) + 1}_block{int(block) + 1}"
        if index == "dim":
            return {f"{prefix}_shortcut": _conv(tensors)}
        return {f"{prefix}_{kind}{int(index) + 1}": _conv(tensors) if kind == "conv" else _bn(tensors)}
    return None


def _official_imagenet(module, tensors):
    if module == "fc":
        return {"predictions": _dense(tensors)}
    if module == "conv0":
        prefix = "conv1"
    else:
        match = re.fullmatch(r"group(\d+)\.block(\d+)\.conv(\d|_dim)", module)
        if not match:
            return None
        group, block, index = match.groups()
        part = "0" if index == "_dim" else str(int(index) + 1)
        prefix = f"conv{int(group) + 2}_block{int(block) + 1}_{part}"
    # The bias is the folded BatchNorm's: the conv takes the kernel alone.
    return {f"{prefix}_conv": _conv({"weight": tensors["weight"]}), f"{prefix}_bn": _identity_bn(tensors["bias"])}


def _cifar_part(name, tensors):
    """`{keras layer: weights}` of a CIFAR WRN layer by keras_wrn's name."""
    kind = _bn if "_bn" in name or name == "head_bn" else _dense if name == "predictions" else _conv
    return {name: kind(tensors)}


def _cifar_mapper(tops, block, parts, *, group_from=1, block_from=0, ignored=()):
    """A key layout of CIFAR WRNs: `tops` maps the stem, head norm and
    classifier modules; `block` matches a block's prefix with named groups
    `group` and `block`, counted from `group_from` and `block_from`; `parts`
    maps the rest of the module's name onto keras_wrn's block layers;
    modules starting with `ignored` are dropped."""
    pattern = re.compile(block + r"\.(?P<part>" + "|".join(map(re.escape, parts)) + ")")

    def mapper(module, tensors):
        if ignored and module.startswith(ignored):
            return {}
        if module in tops:
            return _cifar_part(tops[module], tensors)
        match = pattern.fullmatch(module)
        if match is None:
            return None
        group, index = int(match["group"]) - group_from + 1, int(match["block"]) - block_from + 1
        return _cifar_part(f"group{group}_block{index}_{parts[match['part']]}", tensors)

    return mapper


# RobustBench's WideResNet builds `sub_block1` and never calls it.
_xternalz = _cifar_mapper(
    {"conv1": "stem_conv", "bn1": "head_bn", "fc": "predictions", "classifier": "predictions"},
    r"block(?P<group>[123])\.layer\.(?P<block>\d+)",
    {"bn1": "bn1", "conv1": "conv1", "bn2": "bn2", "conv2": "conv2", "convShortcut": "shortcut"},
    ignored=("sub_block1.",))
_deepmind = _cifar_mapper(
    {"init_conv": "stem_conv", "batchnorm": "head_bn", "logits": "predictions"},
    r"layer\.(?P<group>[012])\.block\.(?P<block>\d+)",
    {"batchnorm_0": "bn1", "conv_0": "conv1", "batchnorm_1": "bn2", "conv_1": "conv2", "shortcut": "shortcut"},
    group_from=0)
_pytorchcv = _cifar_mapper(
    {"features.init_block": "stem_conv", "features.init_block.conv": "stem_conv",
     "features.post_activ.bn": "head_bn", "output": "predictions"},
    r"features\.stage(?P<group>[123])\.unit(?P<block>\d+)",
    {"body.conv1.bn": "bn1", "body.conv1.conv": "conv1", "body.conv2.bn": "bn2", "body.conv2.conv": "conv2",
     "identity_conv": "shortcut"},
    block_from=1)


LAYOUTS = {"torchvision": _torchvision, "official-cifar": _official_cifar, "official-imagenet": _official_imagenet,
           "xternalz": _xternalz, "deepmind": _deepmind, "pytorchcv": _pytorchcv}


def to_keras_layer_weights(state, layout=None):
    """(layout, {Keras layer name: [arrays]}) for a state dict. Raises
    ConversionError naming every tensor that no layer takes."""
    layout = layout or detect_layout(state)
    mapper = LAYOUTS[layout]
    weights, unmapped = {}, []
    for module, tensors in _modules(state).items():
        try:
            mapped = mapper(module, tensors)
        except KeyError as missing:
            raise ConversionError(f"{module}: the checkpoint lacks its {missing.args[0]!r} tensor.") from None
        if mapped is None:
            unmapped += [f"{module}.{a}" for a in tensors]
        else:
            weights.update(mapped)
    if unmapped:
        raise ConversionError(f"{len(unmapped)} tensors of this {layout} checkpoint map to no keras_wrn layer: "
                              f"{', '.join(sorted(unmapped)[:20])}")
    return layout, weights
