"""Small PyTorch implementations of the WRN variants in use, written in the
tests from each source project's forward (not from keras_wrn), and the
name mapping that loads their weights into keras_wrn models.

One module tree with the xternalz / FixMatch-port layout (`conv1`,
`block{g}.layer.{i}.bn1/conv1/bn2/conv2/convShortcut`, `bn1`, `fc`), whose
block forward is each source's:

- `xternalz` (and the paper, USB): `if not equalInOut: x = act(bn1(x))`,
  conv1 and convShortcut read it.
- `deepmind`: the same, with SiLU and `F.pad(v, (0, 1, 0, 1))` before a
  stride-2 conv_0 (RobustBench's `DMWideResNet`), normalisation inside.
- `fixmatch` (google-research/fixmatch, TensorFlow): `x = act(bn(x0))`; x0
  replaced by x only in the network's first block; projection of x0;
  TensorFlow "same" padding (bottom/right for stride 2); biases everywhere.
- `torchssl` (kekmodel/FixMatch-pytorch, TorchSSL): `if not equalInOut and
  activate_before_residual: x = act(bn1(x))`; conv1 reads `x` raw in
  groups 2 and 3.
- `sam` (google-research/sam, Flax): parameter-free shortcut,
  `avg_pool(orig_x, stride)` then zero channels appended.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "silu": nn.SiLU, "leaky_relu": lambda: nn.LeakyReLU(0.1)}


class Block(nn.Module):
    def __init__(self, form, in_planes, out_planes, stride, first, *, act, bias, momentum, eps):
        super().__init__()
        self.form, self.stride, self.first = form, stride, first
        self.bn1 = nn.BatchNorm2d(in_planes, momentum=momentum, eps=eps)
        self.relu1 = ACTIVATIONS[act]()
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, padding=0 if self.tf_padding else 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_planes, momentum=momentum, eps=eps)
        self.relu2 = ACTIVATIONS[act]()
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, padding=1, bias=bias)
        self.equalInOut = in_planes == out_planes
        self.out_planes = out_planes
        if not self.equalInOut and form != "sam":
            self.convShortcut = nn.Conv2d(in_planes, out_planes, 1, stride, padding=0, bias=bias)

    @property
    def tf_padding(self):
        return self.form in ("deepmind", "fixmatch", "sam")

    def first_conv(self, v):
        if self.tf_padding:
            v = F.pad(v, (1, 1, 1, 1) if self.stride == 1 else (0, 1, 0, 1))
        return self.conv1(v)

    def forward(self, x):
        if self.form in ("xternalz", "deepmind"):
            if not self.equalInOut:
                x = self.relu1(self.bn1(x))
                out = x
            else:
                out = self.relu1(self.bn1(x))
            shortcut = x if self.equalInOut else self.convShortcut(x)
        elif self.form == "fixmatch":
            out = self.relu1(self.bn1(x))
            x0 = out if self.first else x
            shortcut = x0 if self.equalInOut else self.convShortcut(x0)
        elif self.form == "torchssl":
            if not self.equalInOut and self.first:
                x = self.relu1(self.bn1(x))
            else:
                out = self.relu1(self.bn1(x))
            out = out if self.equalInOut else x
            shortcut = x if self.equalInOut else self.convShortcut(x)
        elif self.form == "sam":
            if self.first:
                x = self.relu1(self.bn1(x))
                out = x
            else:
                out = self.relu1(self.bn1(x))
            shortcut = x
            if not self.equalInOut:
                shortcut = F.avg_pool2d(shortcut, self.stride, self.stride)
                shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.out_planes - shortcut.shape[1]))
        out = self.relu2(self.bn2(self.first_conv(out)))
        return shortcut + self.conv2(out)


class WRN(nn.Module):
    """The source's WRN-depth-k in eval mode; `mean`/`std` (pixels 0-255)
    normalise inside, as DMWideResNet does."""

    def __init__(self, form, depth, k, num_classes=10, *, act="relu", bias=False, stem_bias=False,
                 momentum=0.1, eps=1e-5, mean=None, std=None, in_channels=3):
        super().__init__()
        n = (depth - 4) // 6
        channels = [16, 16 * k, 32 * k, 64 * k]
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, padding=1, bias=stem_bias)
        for g, stride in enumerate((1, 2, 2), start=1):
            blocks = [Block(form, channels[g - 1] if i == 0 else channels[g], channels[g], stride if i == 0 else 1,
                            g == 1 and i == 0, act=act, bias=bias, momentum=momentum, eps=eps) for i in range(n)]
            group = nn.Module()
            group.layer = nn.Sequential(*blocks)
            setattr(self, f"block{g}", group)
        self.bn1 = nn.BatchNorm2d(channels[3], momentum=momentum, eps=eps)
        self.relu = ACTIVATIONS[act]()
        self.fc = nn.Linear(channels[3], num_classes)

    def forward(self, x):
        if self.mean is not None:
            x = (x - self.mean) / self.std
        out = self.conv1(x)
        for g in (1, 2, 3):
            out = getattr(self, f"block{g}").layer(out)
        out = self.relu(self.bn1(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


# Each source: the reference's form and options, and keras_wrn's registered suffix.
SOURCES = {
    "xternalz": dict(form="xternalz"),
    "deepmind": dict(form="deepmind", act="silu"),
    "fixmatch": dict(form="fixmatch", act="leaky_relu", bias=True, stem_bias=True, momentum=0.001, eps=1e-3),
    "fixmatch-torch": dict(form="torchssl", act="leaky_relu", momentum=0.001),
    "torchssl": dict(form="torchssl", act="leaky_relu", bias=True, stem_bias=True, momentum=0.001, eps=1e-3),
    "usb": dict(form="xternalz", act="leaky_relu", bias=True, stem_bias=True, momentum=0.001, eps=1e-3),
    "sam": dict(form="sam"),
}


def unused_parameters(model):
    """Parameters the source's forward never reads (the first batch norm of
    the raw-input blocks of groups 2 and 3 in the PyTorch SSL ports)."""
    count = 0
    for module in model.modules():
        if isinstance(module, Block) and module.form == "torchssl" and not module.equalInOut and not module.first:
            count += sum(p.numel() for p in module.bn1.parameters())
    return count


def randomized(model, seed=0):
    """Random weights and batch-norm statistics, eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name.endswith(("running_mean", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith("weight") and tensor.ndim == 1:
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            else:
                fan_in = int(np.prod(tensor.shape[1:]))
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
    return model.eval()


def load_into_keras(torch_model, keras_model):
    """Copies the reference's weights into keras_wrn's layers by name."""
    state = {k: v.detach().numpy() for k, v in torch_model.state_dict().items()}

    def conv(prefix, layer):
        weights = [state[prefix + ".weight"].transpose(2, 3, 1, 0)]
        if prefix + ".bias" in state:
            weights.append(state[prefix + ".bias"])
        keras_model.get_layer(layer).set_weights(weights)

    def bn(prefix, layer):
        keras_model.get_layer(layer).set_weights(
            [state[f"{prefix}.{p}"] for p in ("weight", "bias", "running_mean", "running_var")])

    names = {layer.name for layer in keras_model.layers}
    conv("conv1", "stem_conv")
    for g in (1, 2, 3):
        for i, block in enumerate(getattr(torch_model, f"block{g}").layer):
            prefix, layer = f"block{g}.layer.{i}", f"group{g}_block{i + 1}"
            if f"{layer}_bn1" in names:
                bn(prefix + ".bn1", f"{layer}_bn1")
            conv(prefix + ".conv1", f"{layer}_conv1")
            bn(prefix + ".bn2", f"{layer}_bn2")
            conv(prefix + ".conv2", f"{layer}_conv2")
            if hasattr(block, "convShortcut"):
                conv(prefix + ".convShortcut", f"{layer}_shortcut")
    bn("bn1", "head_bn")
    keras_model.get_layer("predictions").set_weights([state["fc.weight"].T, state["fc.bias"]])


def parity(source, registered_name, *, depth=16, k=2, size=16, normalization=None, seed=0):
    """Max |keras - torch| logits for one source at WRN-depth-k, random
    weights; `normalization` a name of keras_wrn's NORMALIZATIONS."""
    import keras_wrn
    from keras_wrn.models.weights import NORMALIZATIONS

    options = dict(SOURCES[source])
    stats = {}
    if normalization is not None:
        stats = {"mean": NORMALIZATIONS[normalization].mean, "std": NORMALIZATIONS[normalization].std}
    reference = randomized(WRN(options.pop("form"), depth, k, **options, **stats), seed)
    arguments = dict(depth=depth, k=k, input_shape=(size, size, 3), classifier_activation=None,
                     include_preprocessing=normalization or False)
    if registered_name is None:  # the source's options on the builder itself
        from keras_wrn.models.variants import SOURCES as KERAS_SOURCES

        model = keras_wrn.WideResNet(**KERAS_SOURCES[source].options, **arguments)
    else:
        model = keras_wrn.get_model(registered_name, **arguments)
    load_into_keras(reference, model)
    rng = np.random.default_rng(seed)
    # Pixels 0-255 where the model normalises them, else inputs as normalised.
    images = rng.uniform(0, 255, (3, size, size, 3)) if normalization else rng.normal(size=(3, size, size, 3))
    images = images.astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    import keras

    got = keras.ops.convert_to_numpy(model(images, training=False))
    return float(np.abs(got - expected).max()), float(np.abs(expected).max())


# Each source's registered model (at WRN-16-2 for the parity check).
PARITY_CASES = [
    ("xternalz", "wrn-16-2", None),
    ("deepmind", "wrn-28-10-deepmind", "cifar10"),
    ("fixmatch", "wrn-28-2-fixmatch", "minus_one_to_one"),
    ("fixmatch-torch", None, None),
    ("torchssl", "wrn-28-2-torchssl", None),
    ("usb", "wrn-28-2-usb", None),
    ("sam", "wrn-28-10-sam", None),
]
