"""Checkpoints of every CIFAR source in use, as their projects save them:
the PyTorch references of tests/models/variant_reference.py (each source's
forward, random weights, randomised batch-norm statistics), their state
dicts under the source's own key names, in the wrappers real files use."""

import numpy as np
import torch

from tests.models.variant_reference import SOURCES, WRN, randomized

DEPTH, K, SIZE = 16, 2, 32


def renamer(parts, tops, block):
    """A function from xternalz names to another layout's: `parts` renames a
    block's modules, `tops` the stem, head norm and classifier, `block(group,
    index)` names block `index` (from 0) of group `group` (from 1)."""
    def rename(key):
        if key.startswith("block"):
            group, _, index, part, attribute = key.split(".", 4)
            return f"{block(int(group[-1]), int(index))}.{parts[part]}.{attribute}"
        module, attribute = key.split(".", 1)
        return f"{tops[module]}.{attribute}"
    return rename


# RobustBench's DMWideResNet and imgclsmob/pytorchcv's CIFARWRN.
deepmind_keys = renamer(
    {"bn1": "batchnorm_0", "conv1": "conv_0", "bn2": "batchnorm_1", "conv2": "conv_1", "convShortcut": "shortcut"},
    {"conv1": "init_conv", "bn1": "batchnorm", "fc": "logits"},
    lambda group, index: f"layer.{group - 1}.block.{index}")
pytorchcv_keys = renamer(
    {"bn1": "body.conv1.bn", "conv1": "body.conv1.conv", "bn2": "body.conv2.bn", "conv2": "body.conv2.conv",
     "convShortcut": "identity_conv"},
    {"conv1": "features.init_block", "bn1": "features.post_activ.bn", "fc": "output"},
    lambda group, index: f"features.stage{group}.unit{index + 1}")


# source -> (reference form in variant_reference, key renaming, extra conversion arguments, normalisation
# the reference applies inside: pixels 0-255 in when set)
CASES = {
    "xternalz": ("xternalz", None, {}, None),
    "fixmatch-torch": ("fixmatch-torch", None, {}, None),
    "torchssl": ("torchssl", None, {}, None),
    "usb": ("usb", lambda key: key.replace("fc.", "classifier."), {}, None),
    "deepmind": ("deepmind", deepmind_keys, {"dataset": "cifar10"}, "cifar10"),
    "pytorchcv": ("xternalz", pytorchcv_keys, {}, None),
}


def reference_model(source, seed=0, depth=DEPTH):
    form, _, _, normalization = CASES[source]
    options = dict(SOURCES[form])
    stats = {}
    if normalization:
        from keras_wrn.models.weights import NORMALIZATIONS

        stats = {"mean": NORMALIZATIONS[normalization].mean, "std": NORMALIZATIONS[normalization].std}
    return randomized(WRN(options.pop("form"), depth, K, **options, **stats), seed)


def source_state(source, model):
    """The reference's state dict under the source's key names, as a
    training script saves it (with `num_batches_tracked`)."""
    rename = CASES[source][1] or (lambda key: key)
    return {rename(key): value for key, value in model.state_dict().items()}


def write_checkpoint(source, path, *, wrap=lambda state: state, seed=0, legacy=False, depth=DEPTH):
    """Saves a checkpoint of `source` at `path`; returns `(images, logits)`
    of the reference in eval mode."""
    model = reference_model(source, seed, depth)
    torch.save(wrap(source_state(source, model)), path, _use_new_zipfile_serialization=not legacy)
    return expected_logits(source, model)


def expected_logits(source, model, count=3):
    rng = np.random.default_rng(1)
    normalised_inside = CASES[source][3] is not None
    images = rng.uniform(0, 255, (count, SIZE, SIZE, 3)) if normalised_inside else \
        rng.normal(size=(count, SIZE, SIZE, 3))
    images = images.astype("float32")
    with torch.no_grad():
        logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    return images, logits
