"""The independent reference: the paper's official functional PyTorch WRN
(szagoruyko/wide-residual-networks, `pytorch/resnet.py` and `utils.py`),
its initialisation, and its training step (SGD, Nesterov momentum 0.9,
weight decay 5e-4 through the optimiser), as `main.py` runs them.

Needs torch (an optional dependency of keras-wrn).
"""


def official_params(depth, k, num_classes, device="cpu"):
    """The official parameters: convs N(0, 2/fan_in) (kaiming_normal_), BN
    weight U[0,1) / bias 0 / running stats 0 and 1, Linear as `linear_params`."""
    import torch

    n = (depth - 4) // 6
    widths = [int(v * k) for v in (16, 32, 64)]
    params, buffers = {}, {}

    def conv(name, cin, cout, size):
        weight = torch.empty(cout, cin, size, size)
        torch.nn.init.kaiming_normal_(weight, mode="fan_in")
        params[name] = weight

    def bn(name, channels):
        params[name + ".weight"] = torch.rand(channels)
        params[name + ".bias"] = torch.zeros(channels)
        buffers[name + ".running_mean"] = torch.zeros(channels)
        buffers[name + ".running_var"] = torch.ones(channels)

    conv("conv0", 3, 16, 3)
    cin = 16
    for g, width in enumerate(widths):
        for b in range(n):
            base = f"group{g}.block{b}"
            ni = cin if b == 0 else width
            conv(base + ".conv0", ni, width, 3)
            conv(base + ".conv1", width, width, 3)
            bn(base + ".bn0", ni)
            bn(base + ".bn1", width)
            if ni != width:
                conv(base + ".convdim", ni, width, 1)
        cin = width
    bn("bn", widths[2])
    weight = torch.empty(num_classes, widths[2])
    torch.nn.init.kaiming_normal_(weight, mode="fan_in")
    params["fc.weight"], params["fc.bias"] = weight, torch.zeros(num_classes)
    params = {key: value.to(device).requires_grad_() for key, value in params.items()}
    return params, {key: value.to(device) for key, value in buffers.items()}


def official_forward(images, params, buffers, depth, training=False):
    """Logits `(N, classes)` of NCHW `images`; BN in training or eval mode."""
    import torch.nn.functional as F

    n = (depth - 4) // 6

    def batch_norm(x, base):
        return F.batch_norm(x, buffers[base + ".running_mean"], buffers[base + ".running_var"],
                            params[base + ".weight"], params[base + ".bias"], training=training)

    def block(x, base, stride):
        o1 = F.relu(batch_norm(x, base + ".bn0"))
        y = F.conv2d(o1, params[base + ".conv0"], stride=stride, padding=1)
        o2 = F.relu(batch_norm(y, base + ".bn1"))
        z = F.conv2d(o2, params[base + ".conv1"], stride=1, padding=1)
        if base + ".convdim" in params:
            return z + F.conv2d(o1, params[base + ".convdim"], stride=stride)
        return z + x

    def group(o, base, stride):
        for i in range(n):
            o = block(o, f"{base}.block{i}", stride if i == 0 else 1)
        return o

    x = F.conv2d(images, params["conv0"], padding=1)
    g0 = group(x, "group0", 1)
    g1 = group(g0, "group1", 2)
    g2 = group(g1, "group2", 2)
    o = F.relu(batch_norm(g2, "bn"))
    o = F.adaptive_avg_pool2d(o, 1).flatten(1)  # F.avg_pool2d(o, 8) at 32x32
    return F.linear(o, params["fc.weight"], params["fc.bias"])


def training_step(depth, k, num_classes, batch_size, image_size=32, threads=None, seed=0, autocast=None):
    """A callable running one official training step (forward, cross-entropy,
    backward, SGD update) on a fixed random batch; `autocast="bfloat16"` runs
    the forward pass under `torch.autocast` (float32 weights, as Keras'
    mixed_bfloat16)."""
    import contextlib

    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    params, buffers = official_params(depth, k, num_classes)
    optimizer = torch.optim.SGD(params.values(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    images = torch.randn(batch_size, 3, image_size, image_size)
    labels = torch.randint(0, num_classes, (batch_size,))

    def precision():
        return torch.autocast("cpu", dtype=getattr(torch, autocast)) if autocast else contextlib.nullcontext()

    def step():
        optimizer.zero_grad()
        with precision():
            loss = F.cross_entropy(official_forward(images, params, buffers, depth, training=True).float(), labels)
        loss.backward()
        optimizer.step()
        return loss.detach().item()

    return step


def inference_step(depth, k, num_classes, batch_size, image_size=32, threads=None, seed=0):
    """A callable running the official forward pass (eval mode, no grad)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    params, buffers = official_params(depth, k, num_classes)
    images = torch.randn(batch_size, 3, image_size, image_size)

    def step():
        with torch.no_grad():
            return official_forward(images, params, buffers, depth).sum().item()

    return step
