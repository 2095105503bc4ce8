"""SAM and ASAM in PyTorch, float64, written in the tests from the authors'
code (davda54/sam, SamsungLabs/ASAM `asam.py`), not from keras_wrn: the
ascent on the first pass's gradients (ASAM: scaled by |w| + eta on every
parameter named `weight`), the second pass with batch-norm running
statistics frozen (davda54's `disable_running_stats`), the descent by
torch.optim.SGD on the second pass's gradients. And the same WRN-10-1 in
Keras, float64, with the reference's weights."""

import numpy as np
import torch
import torch.nn.functional as F

from tests.models.variant_reference import WRN, load_into_keras, randomized

RHO = {"sam": 0.05, "asam": 0.5}
ETA = 0.01
LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 5e-4
STEPS, BATCH, SIZE, CLASSES = 3, 4, 8, 3


def batches(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(STEPS * BATCH, SIZE, SIZE, 1))
    labels = rng.integers(0, CLASSES, STEPS * BATCH)
    return images, labels


def reference(seed=0):
    return randomized(WRN("xternalz", 10, 1, CLASSES, in_channels=1), seed).double().train()


def _frozen_statistics(model):
    saved = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            saved[name] = module.momentum
            module.momentum = 0.0
    return saved


def _restore_momentum(model, saved):
    for name, module in model.named_modules():
        if name in saved:
            module.momentum = saved[name]


def train_reference(minimizer, seed=0):
    """The reference after STEPS two-pass steps: `{name: float64 array}`."""
    model = reference(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                                weight_decay=WEIGHT_DECAY)
    images, labels = batches(seed)
    for step in range(STEPS):
        x = torch.from_numpy(images[step * BATCH:(step + 1) * BATCH].transpose(0, 3, 1, 2))
        y = torch.from_numpy(labels[step * BATCH:(step + 1) * BATCH])
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            named = [(n, p) for n, p in model.named_parameters() if p.grad is not None]
            scales = {n: (p.abs() + ETA if minimizer == "asam" and "weight" in n else None) for n, p in named}
            scaled = {n: p.grad * scales[n] if scales[n] is not None else p.grad for n, p in named}
            norm = torch.norm(torch.stack([torch.norm(g) for g in scaled.values()])) + 1e-16
            eps = {n: (scaled[n] * scales[n] if scales[n] is not None else scaled[n]) * (RHO[minimizer] / norm)
                   for n, _ in named}
            for n, p in named:
                p.add_(eps[n])
        optimizer.zero_grad()
        saved = _frozen_statistics(model)
        F.cross_entropy(model(x), y).backward()
        _restore_momentum(model, saved)
        with torch.no_grad():
            for n, p in named:
                p.sub_(eps[n])
        optimizer.step()
        optimizer.zero_grad()
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def keras_model(seed=0):
    """keras_wrn's WRN-10-1 (logits, float64) holding the reference's
    initial weights. Call with Keras' dtype policy set to float64."""
    import keras_wrn

    model = keras_wrn.WideResNet(10, 1, num_classes=CLASSES, input_shape=(SIZE, SIZE, 1), classifier_activation=None)
    load_into_keras(reference(seed), model)
    return model


def compare(model, expected):
    """Max |keras - reference| over the trainable weights and the batch-norm
    running means (the second pass must leave those alone)."""
    from keras import ops

    pairs = {"stem_conv": "conv1", "head_bn": "bn1", "predictions": "fc"}
    worst = 0.0
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name in pairs:
            prefix = pairs[layer.name]
        else:
            group, block, part = layer.name.split("_")
            prefix = f"block{group[-1]}.layer.{int(block[5:]) - 1}.{ {'shortcut': 'convShortcut'}.get(part, part)}"
        for variable in layer.weights:
            name = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias",
                    "moving_mean": "running_mean", "moving_variance": None}[variable.name]
            if name is None:
                continue
            value = ops.convert_to_numpy(variable.value)
            reference_value = expected[f"{prefix}.{name}"]
            if reference_value.ndim == 4:
                reference_value = reference_value.transpose(2, 3, 1, 0)
            elif reference_value.ndim == 2:
                reference_value = reference_value.T
            worst = max(worst, float(np.abs(value - reference_value).max()))
    return worst
