"""An independent NumPy port of the official functional PyTorch WRN.

szagoruyko/wide-residual-networks, `pytorch/resnet.py`: `f(input, params,
mode)` with the official parameter names (`conv0`, `group0.block0.conv0`,
`group0.block0.bn0.weight`, `...convdim`, `bn`, `fc.weight`), NCHW, Torch's
symmetric padding, eval-mode BatchNorm (eps 1e-5). Written from the paper's
code, not from keras_wrn, so that the tests compare two implementations.
"""

import numpy as np

EPS = 1e-5


def conv2d(x, w, stride=1, padding=0):
    """x (N, C, H, W), w (O, C, kh, kw) as torch.nn.functional.conv2d."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, oh, ow), dtype=np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out


def batch_norm(x, params, base):
    shape = (1, -1, 1, 1)
    mean = params[base + ".running_mean"].reshape(shape)
    var = params[base + ".running_var"].reshape(shape)
    gamma = params[base + ".weight"].reshape(shape)
    beta = params[base + ".bias"].reshape(shape)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def relu(x):
    return np.maximum(x, 0.0)


def wrn_forward(x, params, depth):
    """Logits of the official WRN-depth-k for NCHW input `x` (eval mode)."""
    n = (depth - 4) // 6

    def block(x, base, stride):
        o1 = relu(batch_norm(x, params, base + ".bn0"))
        y = conv2d(o1, params[base + ".conv0"], stride=stride, padding=1)
        o2 = relu(batch_norm(y, params, base + ".bn1"))
        z = conv2d(o2, params[base + ".conv1"], stride=1, padding=1)
        if base + ".convdim" in params:
            return z + conv2d(o1, params[base + ".convdim"], stride=stride)
        return z + x

    def group(o, base, stride):
        for i in range(n):
            o = block(o, f"{base}.block{i}", stride if i == 0 else 1)
        return o

    x = conv2d(x, params["conv0"], padding=1)
    g0 = group(x, "group0", 1)
    g1 = group(g0, "group1", 2)
    g2 = group(g1, "group2", 2)
    o = relu(batch_norm(g2, params, "bn"))
    o = o.mean(axis=(2, 3))  # the 8x8 average pool at 32x32 input
    return o @ params["fc.weight"].T + params["fc.bias"]
