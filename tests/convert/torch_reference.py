"""Torch references written from the paper's own code, for the converter
tests: the official functional CIFAR WRN (szagoruyko/wide-residual-networks,
`pytorch/resnet.py`, eval mode; shared with the benchmark) and the
functional WRN-50-2 export (szagoruyko/functional-zoo,
`wide-resnet-50-2-export.ipynb`).
"""

import numpy as np
import torch
import torch.nn.functional as F

from keras_wrn.benchmark.torch_reference import official_forward


def official_cifar_forward(images, params, depth):
    """images (N, 3, H, W) torch; params {name: torch tensor}, official names
    (running statistics included): the benchmark's reference, eval mode."""
    return official_forward(images, params, params, depth, training=False)


def official_imagenet_params(stage_blocks=(3, 4, 6, 3), width=2, num_classes=1000, seed=0):
    """Random parameters in the layout of the paper's WRN-50-2 export: every
    conv with a bias (BatchNorm folded in), the projection `conv_dim`."""
    rng = np.random.default_rng(seed)

    def conv(base, cin, cout, k):
        params[base + ".weight"] = rng.normal(0, np.sqrt(2 / (k * k * cin)), (cout, cin, k, k))
        params[base + ".bias"] = rng.normal(0, 0.05, cout)

    params = {}
    conv("conv0", 3, 64, 7)
    cin = 64
    for g, count in enumerate(stage_blocks):
        planes = 64 * 2 ** g
        inner = planes * width
        for b in range(count):
            base = f"group{g}.block{b}.conv"
            conv(base + "0", cin, inner, 1)
            conv(base + "1", inner, inner, 3)
            conv(base + "2", inner, planes * 4, 1)
            if b == 0:
                conv(base + "_dim", cin, planes * 4, 1)
            cin = planes * 4
    params["fc.weight"] = rng.normal(0, np.sqrt(1 / cin), (num_classes, cin))
    params["fc.bias"] = rng.normal(0, 0.05, num_classes)
    return {k: torch.tensor(v, dtype=torch.float32) for k, v in params.items()}


def official_imagenet_forward(images, params, stage_blocks=(3, 4, 6, 3)):
    def conv2d(x, base, stride=1, pad=0):
        return F.conv2d(x, params[base + ".weight"], params[base + ".bias"], stride, pad)

    def group(o, base, stride, n):
        for i in range(n):
            b_base = f"{base}.block{i}.conv"
            x = o
            o = F.relu(conv2d(x, b_base + "0"))
            o = F.relu(conv2d(o, b_base + "1", stride=stride if i == 0 else 1, pad=1))
            o = conv2d(o, b_base + "2")
            o = o + (conv2d(x, b_base + "_dim", stride=stride) if i == 0 else x)
            o = F.relu(o)
        return o

    o = F.relu(conv2d(images, "conv0", 2, 3))
    o = F.max_pool2d(o, 3, 2, 1)
    for g, count in enumerate(stage_blocks):
        o = group(o, f"group{g}", 1 if g == 0 else 2, count)
    o = F.adaptive_avg_pool2d(o, 1).flatten(1)  # avg_pool2d(o, 7) at 224x224
    return F.linear(o, params["fc.weight"], params["fc.bias"])
