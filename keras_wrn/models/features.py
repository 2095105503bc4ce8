"""Feature taps: a keras_wrn model as a model of named feature maps.

What timm's `features_only` and keras-hub's `pyramid_outputs` give: the
intermediate outputs that distillation, anomaly detection and
representation work read, by name, with the model's weights, on every
backend; the result is a plain functional model (one output per tap) that
saves as `.keras` and exports as a SavedModel with one output per tap.

CIFAR WRNs (`WideResNet`), with their layer names:

    tap            layer                      shape (32x32 input, width k)
    stem           stem_conv                  (N, 32, 32, 16)
    group1         group1_block{N}_add        (N, 32, 32, 16k)
    group2         group2_block{N}_add        (N, 16, 16, 32k)
    group3         group3_block{N}_add        (N, 8, 8, 64k)
    group1_preact  group2_block1_bn1          (N, 32, 32, 16k)
    group2_preact  group3_block1_bn1          (N, 16, 16, 32k)
    group3_preact  head_bn                    (N, 8, 8, 64k)
    features       head_relu (or _silu, ...)  (N, 8, 8, 64k)
    pooled         avg_pool                   (N, 64k)
    logits         predictions                (N, num_classes)

The `_preact` taps are the batch-norm outputs before the activation that
follows each group, RepDistiller's `preact=True` features (`f1..f3`): the
distillation losses that need them (CRD's baselines, OFD) read them there.
They do not exist where the next block reads its raw input
(`shortcut="raw_input"`). `pooled` and `logits` need the top.

ImageNet WRNs (`ImageNetWideResNet`: WRN-50-2, ...), torchvision's names:
`stem` (after the max pool, `pool1_pool`), `layer1`..`layer4` (the last
block of each stage, `conv{2..5}_block{n}_out`), `pooled`, `logits`.
PatchCore (anomalib) reads `layer2` and `layer3` of WRN-50-2.
"""

import re

import keras

from keras_wrn.errors import InvalidArgumentError


def _last_block(model, prefix):
    """The name of the last layer `{prefix}_block{n}_{suffix}`."""
    pattern = re.compile(rf"{prefix}_block(\d+)_(add|out)$")
    found = [(int(m.group(1)), layer.name) for layer in model.layers if (m := pattern.match(layer.name))]
    return max(found)[1] if found else None


def _cifar_taps(model):
    activation = model.style.activation
    taps = {"stem": "stem_conv"}
    taps.update({f"group{g}": _last_block(model, f"group{g}") for g in (1, 2, 3)})
    taps.update({"group1_preact": "group2_block1_bn1", "group2_preact": "group3_block1_bn1",
                 "group3_preact": "head_bn", "features": f"head_{activation}"})
    return taps


def _imagenet_taps(model):
    taps = {"stem": "pool1_pool"}
    taps.update({f"layer{s - 1}": _last_block(model, f"conv{s}") for s in (2, 3, 4, 5)})
    return taps


def feature_taps(model):
    """`{tap: layer name}` for the taps `model` has (see the module
    docstring), in network order."""
    from keras_wrn.models.cifar import WideResNet
    from keras_wrn.models.imagenet import ImageNetWideResNet

    if isinstance(model, WideResNet):
        taps = _cifar_taps(model)
    elif isinstance(model, ImageNetWideResNet):
        taps = _imagenet_taps(model)
    else:
        raise InvalidArgumentError(
            f"Feature taps are defined for keras_wrn's WideResNet and ImageNetWideResNet models. "
            f"Received: a {type(model).__name__}")
    taps.update({"pooled": "avg_pool", "logits": "predictions"})
    names = {layer.name for layer in model.layers}
    return {tap: layer for tap, layer in taps.items() if layer in names}


def feature_extractor(model, taps=None, **overrides):
    """A functional model that returns `{tap: feature map}` for `taps`.

    Args:
        model: a keras_wrn model, or a registered name (built with
            `overrides`: `weights`, `num_classes`, `input_shape`, ...).
        taps: tap names (see `feature_taps(model)`); default: every group
            output (`group1..3` or `layer1..4`).

    Returns:
        A `keras.Model` sharing `model`'s layers and weights, named
        `{model.name}_features`, whose output is a dict in the order of
        `taps`. Input shape: `model`'s. Output shapes: the taps' (module
        docstring).
    """
    if isinstance(model, str):
        from keras_wrn.models.registry import get_model

        model = get_model(model, **overrides)
    elif overrides:
        raise InvalidArgumentError(
            f"feature_extractor takes build arguments only with a registered name. Received: "
            f"{', '.join(sorted(overrides))} with a built {type(model).__name__}")
    available = feature_taps(model)
    if taps is None:
        taps = [tap for tap in available if re.fullmatch(r"(group|layer)\d", tap)]
    if isinstance(taps, str) or not taps:
        raise InvalidArgumentError(f"taps must be a non-empty list of tap names. Received: taps={taps!r}")
    unknown = [tap for tap in taps if tap not in available]
    if unknown:
        raise InvalidArgumentError(
            f"{model.name} has no tap {', '.join(map(repr, unknown))}. Its taps: {', '.join(available)}. "
            f"Received: taps={list(taps)!r}")
    outputs = {tap: model.get_layer(available[tap]).output for tap in taps}
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_features")
