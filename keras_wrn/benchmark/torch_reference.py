"""The independent reference: the paper's official functional PyTorch WRN
(szagoruyko/wide-residual-networks, `pytorch/resnet.py` and `utils.py`),
its initialisation, and its training step (SGD, Nesterov momentum 0.9,
weight decay 5e-4 through the optimiser), as `main.py` runs them.

Needs torch (an optional dependency of keras-wrn).
"""

from keras_wrn.models.weights import CIFAR_MEAN, CIFAR_STD


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


def _autocast(device, autocast):
    import contextlib

    import torch

    return torch.autocast(torch.device(device).type, dtype=getattr(torch, autocast)) if autocast \
        else contextlib.nullcontext()


def _placed(tensor, channels_last):
    import torch

    return tensor.contiguous(memory_format=torch.channels_last) if channels_last else tensor


def training_step(depth, k, num_classes, batch_size, image_size=32, threads=None, seed=0, autocast=None,
                  device="cpu", channels_last=False, compile=False, read=True):
    """A callable running one official training step (forward, cross-entropy,
    backward, SGD update) on a fixed random batch and returning the loss (with
    `read`, its value, so the step has finished; else the device tensor, for
    timing many steps with one synchronisation); `autocast="bfloat16"` runs the
    forward pass under `torch.autocast` (float32 weights, as Keras'
    mixed_bfloat16); `channels_last` stores images and convolution weights
    NHWC (tensor cores' layout); `compile` runs the step through
    `torch.compile`."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    params, buffers = official_params(depth, k, num_classes, device=device)
    if channels_last:
        for key, value in params.items():
            if value.dim() == 4:
                params[key] = value.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    optimizer = torch.optim.SGD(params.values(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    images = _placed(torch.randn(batch_size, 3, image_size, image_size, device=device), channels_last)
    labels = torch.randint(0, num_classes, (batch_size,), device=device)

    def loss_of(images, labels):
        with _autocast(device, autocast):
            return F.cross_entropy(official_forward(images, params, buffers, depth, training=True).float(), labels)

    forward = torch.compile(loss_of) if compile else loss_of

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = forward(images, labels)
        loss.backward()
        optimizer.step()
        return loss.detach().item() if read else loss.detach()

    return step


def inference_step(depth, k, num_classes, batch_size, image_size=32, threads=None, seed=0, autocast=None,
                   device="cpu", channels_last=False, compile=False, read=True):
    """A callable running the official forward pass (eval mode, no grad);
    `read` as `training_step`."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    params, buffers = official_params(depth, k, num_classes, device=device)
    if channels_last:
        params = {key: _placed(value.detach(), value.dim() == 4) for key, value in params.items()}
    images = _placed(torch.randn(batch_size, 3, image_size, image_size, device=device), channels_last)

    def logits(images):
        with _autocast(device, autocast):
            return official_forward(images, params, buffers, depth)

    forward = torch.compile(logits) if compile else logits

    def step():
        with torch.no_grad():
            total = forward(images).float().sum()
        return total.item() if read else total

    return step


def augment(images, generator, padding=4):
    """The official CIFAR augmentation on a batch on any device: 4-pixel
    reflection padding, a random 32x32 crop and a random horizontal flip per
    image (torchvision's `Pad(4, padding_mode='reflect')`, `RandomCrop`,
    `RandomHorizontalFlip`, as `main.py` composes them). NCHW in, NCHW out."""
    import torch
    import torch.nn.functional as F

    count, _, height, width = images.shape
    padded = F.pad(images, (padding,) * 4, mode="reflect")
    offsets = torch.randint(0, 2 * padding + 1, (count, 2), generator=generator, device=images.device)
    rows = (offsets[:, :1] + torch.arange(height, device=images.device))[:, None, :, None]
    columns = (offsets[:, 1:] + torch.arange(width, device=images.device))[:, None, None, :]
    batch = torch.arange(count, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    cropped = padded[batch, channel, rows, columns]
    flip = torch.rand(count, generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(3), cropped)


class _OfficialCifarRun:
    """The state of `official_cifar_training`: the functional WRN's tensors,
    the data on `device`, and its forward, optimiser and test pass."""

    def __init__(self, train_images, train_labels, test_images, test_labels, *, depth, k, mean, std, seed, device,
                 autocast, channels_last):
        import torch

        torch.manual_seed(seed)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.depth, self.device, self.autocast, self.channels_last = depth, device, autocast, channels_last
        self.params, self.buffers = official_params(depth, k, int(train_labels.max()) + 1, device=device)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.x_train, self.y_train = self.to_device(train_images), torch.as_tensor(train_labels, device=device).long()
        self.x_test, self.y_test = self.to_device(test_images), torch.as_tensor(test_labels, device=device).long()

    def to_device(self, images):
        import torch

        return torch.as_tensor(images, device=self.device).permute(0, 3, 1, 2).contiguous()

    def logits(self, images, training):
        normalised = _placed((images.float() - self.mean) / self.std, self.channels_last)
        with _autocast(self.device, self.autocast):
            return official_forward(normalised, self.params, self.buffers, self.depth, training=training).float()

    def predict(self, images, batch=1000):
        """Logits of uint8 NHWC `images`, as numpy."""
        import torch

        x = self.to_device(images)
        with torch.no_grad():
            return torch.cat([self.logits(x[i:i + batch], False) for i in range(0, len(x), batch)]).cpu().numpy()

    def train_epoch(self, optimizer, batch_size):
        """One epoch in a new order: `(train loss, train error, seconds)`."""
        import time

        import torch
        import torch.nn.functional as F

        steps = len(self.x_train) // batch_size
        started = time.perf_counter()
        loss_sum, wrong = torch.zeros((), device=self.device), torch.zeros((), device=self.device)
        order = torch.randperm(len(self.x_train), generator=self.generator, device=self.device)
        for step in range(steps):
            take = order[step * batch_size:(step + 1) * batch_size]
            images, labels = augment(self.x_train[take], self.generator), self.y_train[take]
            out = self.logits(images, True)
            loss = F.cross_entropy(out, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            wrong += (out.argmax(1) != labels).sum()
        return float(loss_sum) / steps, float(wrong) / (steps * batch_size), time.perf_counter() - started

    def test(self):
        """`(loss, error)` on the whole test set."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            logits = torch.cat([self.logits(self.x_test[i:i + 1000], False) for i in range(0, len(self.x_test), 1000)])
            return float(F.cross_entropy(logits, self.y_test)), float((logits.argmax(1) != self.y_test).float().mean())


def official_cifar_training(train_images, train_labels, test_images, test_labels, *, depth, k, epochs,
                            batch_size=128, lr=0.1, epoch_step=(), lr_decay_ratio=0.2, weight_decay=5e-4,
                            mean=CIFAR_MEAN, std=CIFAR_STD, seed=0, device="cpu", autocast=None,
                            channels_last=False, nesterov=True, on_epoch=None, keep_going=None):
    """The official `main.py` training of a CIFAR WRN, from uint8 NHWC numpy
    arrays held on `device`: SGD (momentum 0.9, weight decay through the
    optimiser; `nesterov` as the paper and the Lua code, where `main.py`
    leaves it out), the rate times `lr_decay_ratio` when an epoch of
    `epoch_step` begins (1-based), with a new optimiser then (its momentum
    starts again, as `main.py` does), a new shuffle each epoch, the
    augmentation above, mean/std on pixels 0-255, cross-entropy; the whole
    test set evaluated after each epoch. `on_epoch(record)` gets each epoch's
    record; `keep_going()` False stops before the next epoch. Returns
    `(records, predict)`, `predict(uint8 NHWC)` giving logits of the result."""
    import torch

    run = _OfficialCifarRun(train_images, train_labels, test_images, test_labels, depth=depth, k=k, mean=mean,
                            std=std, seed=seed, device=device, autocast=autocast, channels_last=channels_last)

    def optimizer_at(rate):
        return torch.optim.SGD(run.params.values(), rate, momentum=0.9, weight_decay=weight_decay, nesterov=nesterov)

    rate, optimizer, records = lr, optimizer_at(lr), []
    steps_per_epoch = len(train_labels) // batch_size
    for epoch in range(1, epochs + 1):
        if keep_going is not None and not keep_going():
            break
        if epoch in epoch_step:
            rate *= lr_decay_ratio
            optimizer = optimizer_at(rate)
        train_loss, train_error, seconds = run.train_epoch(optimizer, batch_size)
        test_loss, test_error = run.test()
        record = {"epoch": epoch, "step": epoch * steps_per_epoch, "learning_rate": rate, "train_loss": train_loss,
                  "train_error": train_error, "test_loss": test_loss, "test_error": test_error,
                  "epoch_seconds": round(seconds, 3),
                  "images_per_second": round(steps_per_epoch * batch_size / seconds, 1)}
        records.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return records, run.predict
