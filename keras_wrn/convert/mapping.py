"""PyTorch state dicts -> keras_wrn layer weights, for three layouts:

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
  identity with beta = bias, which computes the same function.

The result maps Keras layer names to weight lists in Keras order: conv
kernels (kh, kw, in, out), BatchNorm [gamma, beta, moving mean, moving
variance], Dense [kernel (in, out), bias].
"""

import re

import numpy as np

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
    return [tensors["weight"].transpose(2, 3, 1, 0)]


def _bn(tensors):
    return [tensors[a] for a in BN_ATTRIBUTES]


def _dense(tensors):
    return [tensors["weight"].T, tensors["bias"]]


def _identity_bn(bias):
    channels = len(bias)
    return [np.ones(channels, np.float32), bias.astype(np.float32), np.zeros(channels, np.float32),
            np.full(channels, 1.0 - BN_EPSILON, np.float32)]


def detect_layout(state):
    """'torchvision', 'official-cifar' or 'official-imagenet'."""
    keys = set(state)
    if any(k.startswith("layer1.") for k in keys) and "conv1.weight" in keys:
        return "torchvision"
    if "conv0.weight" in keys and "conv0.bias" in keys and "group0.block0.conv0.weight" in keys:
        return "official-imagenet"
    if "conv0" in keys and "group0.block0.conv0" in keys:
        return "official-cifar"
    shown = ", ".join(sorted(keys)[:8])
    raise ConversionError(
        f"Unrecognised checkpoint layout (first keys: {shown}). keras-wrn converts torchvision/timm "
        f"ResNets (conv1, layer1.0.conv1, ...) and the paper's official functional checkpoints "
        f"(conv0, group0.block0.conv0, ...)."
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
    return {f"{prefix}_conv": _conv(tensors), f"{prefix}_bn": _identity_bn(tensors["bias"])}


LAYOUTS = {"torchvision": _torchvision, "official-cifar": _official_cifar,
           "official-imagenet": _official_imagenet}


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
