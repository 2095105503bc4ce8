"""Residual blocks of the Wide ResNet family, as functional-API building steps.

Three kinds of block, each a function `x -> x` that adds named layers:

- `wide_block`: the pre-activation wide block B(M) of the CIFAR/SVHN WRN-n-k
  (Zagoruyko & Komodakis 2016, section 2.1 and Table 1), following the official
  code (`models/wide-resnet.lua`, `pytorch/resnet.py`).
- `bottleneck_block`: the post-activation bottleneck of the ImageNet
  WRN-50-2-bottleneck (section 4.3, Table 8), as torchvision's `Bottleneck`.
- `basic_block`: the post-activation basic block of the wide WRN-18/34
  (Table 7), as torchvision's `BasicBlock`.

By default (the paper's `BlockStyle`) convolutions have no bias and a
convolution with a stride greater than one pads symmetrically by
`kernel_size // 2` (as Torch does) instead of Keras' asymmetric "same"
padding, so that weights converted from Torch give the same outputs. The
wide block's `style` (`keras_wrn.models.variants`) selects the activation,
batch-norm constants, biases, padding and shortcut form of the variants in
use today.
"""

import keras
from keras import layers

from keras_wrn.models import layers as wrn_layers
from keras_wrn.models.variants import PAPER_STYLE

# Torch's BatchNorm: eps 1e-5, running-average momentum 0.1 (Keras' 0.9).
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9

# Official WRN code (pytorch/utils.py): kaiming_normal (fan_in, untruncated)
# for convolutions and the classifier, BN gamma ~ U[0, 1), BN beta = 0.
WRN_CONV_INITIALIZER = keras.initializers.VarianceScaling(
    scale=2.0, mode="fan_in", distribution="untruncated_normal"
)
WRN_GAMMA_INITIALIZER = keras.initializers.RandomUniform(0.0, 1.0)

# torchvision's ResNet: kaiming_normal (fan_out, relu), BN gamma = 1.
TORCHVISION_CONV_INITIALIZER = keras.initializers.VarianceScaling(
    scale=2.0, mode="fan_out", distribution="untruncated_normal"
)


def channel_axis():
    """The channel axis of the current `keras.config.image_data_format()`."""
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def conv2d(x, filters, kernel_size, strides=1, *, kernel_initializer, name, use_bias=False, padding="symmetric"):
    """A square convolution, bias-free by default.

    `padding="symmetric"` pads by `kernel_size // 2` on every side (Torch);
    `"same"` is Keras' (TensorFlow's): a strided convolution pads more at the
    bottom and right. Either way an `(H, W)` input gives
    `(ceil(H / strides), ceil(W / strides))`.
    """
    if padding == "symmetric" and strides > 1 and kernel_size > 1:
        # `conv1_conv` pads in `conv1_pad` (keras.applications' names).
        pad_name = name.removesuffix("_conv") + "_pad"
        x = layers.ZeroPadding2D(kernel_size // 2, name=pad_name)(x)
        padding = "valid"
    else:
        padding = "same"
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
    )(x)


def batch_norm(x, *, gamma_initializer="ones", momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name):
    return layers.BatchNormalization(
        axis=channel_axis(),
        epsilon=epsilon,
        momentum=momentum,
        gamma_initializer=gamma_initializer,
        name=name,
    )(x)


def activation(x, style, name):
    """The style's activation, named `{name}` with its kind in place of
    `act`: `group1_block1_relu1`, `..._silu1`, `..._leaky_relu1`."""
    name = name.replace("_act", f"_{style.activation}")
    if style.activation == "relu":
        return layers.ReLU(name=name)(x)
    if style.activation == "leaky_relu":
        return layers.LeakyReLU(negative_slope=style.leaky_relu_slope, name=name)(x)
    return layers.Activation("silu", name=name)(x)


def bn_act(x, name, suffix="", style=PAPER_STYLE):
    """Pre-activation BN-activation with the official WRN initialisation:
    `{name}_bn{suffix}`, `{name}_relu{suffix}` (or `_silu`, `_leaky_relu`)."""
    x = batch_norm(x, gamma_initializer=WRN_GAMMA_INITIALIZER, momentum=style.bn_momentum,
                   epsilon=style.bn_epsilon, name=f"{name}_bn{suffix}")
    return activation(x, style, f"{name}_act{suffix}")


def _pool_pad_shortcut(x, filters, strides, name):
    """The parameter-free shortcut: `strides`-average pooling, then zero
    channels appended up to `filters` (google-research/sam)."""
    if strides > 1:
        x = layers.AveragePooling2D(strides, strides, name=f"{name}_shortcut_pool")(x)
    return wrn_layers.ChannelZeroPadding(filters - x.shape[channel_axis()], axis=channel_axis(),
                                         name=f"{name}_shortcut_pad")(x)


def wide_block(
    x,
    filters,
    kernel_sizes=(3, 3),
    strides=1,
    dropout_rate=0.0,
    drop_path_rate=0.0,
    *,
    style=PAPER_STYLE,
    first_in_network=False,
    name,
):
    """Pre-activation wide residual block B(M).

    `kernel_sizes` is M, e.g. `(3, 3)` for B(3,3) or `(3, 1, 3)`; every
    convolution has `filters` output channels and is preceded by
    BN-activation. The stride sits on the first convolution. Dropout, when
    enabled, follows the BN-activation before every convolution but the first
    (for B(3,3): between the two convolutions).

    Shortcut, as in the official code (`style.shortcut="projection"`): when
    the channel count changes (or, a case the paper's networks never reach,
    the stride is not one), the first BN-activation is applied before the
    split and a strided 1x1 projection reads that activated tensor;
    otherwise the shortcut is the raw input. The other forms
    (`keras_wrn.models.variants`) differ only in such blocks, and only when
    the block is not `first_in_network`: `raw_projection` projects the raw
    input; `raw_input` feeds the raw input to the first convolution and the
    projection (and has no first batch norm); `pool_pad` average-pools and
    zero-pads instead of projecting.

    Layer names: `{name}_bn1`, `{name}_relu1`, `{name}_conv1`, ...,
    `{name}_dropout2`, ..., `{name}_shortcut`, `{name}_drop_path`, `{name}_add`
    (`silu`/`leaky_relu` in place of `relu` with those activations;
    `{name}_shortcut_pool`, `{name}_shortcut_pad` for `pool_pad`).

    Input shape: `(N, H, W, C_in)` (channels_last). Output shape:
    `(N, ceil(H / strides), ceil(W / strides), filters)`.
    """
    in_channels = x.shape[channel_axis()]
    project = in_channels != filters or strides != 1
    raw_form = project and not first_in_network and style.shortcut != "projection"

    def conv(tensor, kernel_size, stride, conv_name):
        return conv2d(tensor, filters, kernel_size, stride, kernel_initializer=WRN_CONV_INITIALIZER,
                      use_bias=style.conv_bias, padding=style.padding, name=conv_name)

    y = x if raw_form and style.shortcut == "raw_input" else bn_act(x, name, "1", style)
    if not project:
        shortcut = x
    else:
        source = x if raw_form else y
        if style.shortcut == "pool_pad":
            shortcut = _pool_pad_shortcut(source, filters, strides, name)
        else:
            shortcut = conv(source, 1, strides, f"{name}_shortcut")
    for i, kernel_size in enumerate(kernel_sizes, start=1):
        if i > 1:
            y = bn_act(y, name, str(i), style)
            if dropout_rate > 0.0:
                y = layers.Dropout(dropout_rate, name=f"{name}_dropout{i}")(y)
        y = conv(y, kernel_size, strides if i == 1 else 1, f"{name}_conv{i}")
    if drop_path_rate > 0.0:
        y = wrn_layers.StochasticDepth(drop_path_rate, name=f"{name}_drop_path")(y)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def _post_activation_shortcut(x, filters, strides, name):
    """Identity, or torchvision's 1x1 conv + BN projection `{name}_0_conv/_bn`."""
    if x.shape[channel_axis()] == filters and strides == 1:
        return x
    shortcut = conv2d(
        x, filters, 1, strides,
        kernel_initializer=TORCHVISION_CONV_INITIALIZER, name=f"{name}_0_conv",
    )
    return batch_norm(shortcut, name=f"{name}_0_bn")


def bottleneck_block(x, planes, width=1.0, strides=1, *, name):
    """Post-activation bottleneck, torchvision's `Bottleneck` (ResNet v1.5).

    1x1 conv to `int(planes * width)`, 3x3 conv (strided) at that width, 1x1
    conv to `4 * planes`, each followed by BN, ReLU after the first two and
    after the addition. WRN-50-2-bottleneck uses `width=2.0` (inner widths
    128/256/512/1024, outputs 256/512/1024/2048).

    Layer names follow keras.applications' ResNet: `{name}_1_conv`,
    `{name}_1_bn`, `{name}_1_relu`, `{name}_2_*`, `{name}_3_*`, the
    projection `{name}_0_conv` / `{name}_0_bn`, `{name}_add`, `{name}_out`.

    Input shape: `(N, H, W, C_in)`. Output shape:
    `(N, ceil(H / strides), ceil(W / strides), 4 * planes)`.
    """
    inner = int(planes * width)
    shortcut = _post_activation_shortcut(x, 4 * planes, strides, name)
    specs = ((inner, 1, 1), (inner, 3, strides), (4 * planes, 1, 1))
    for i, (filters, kernel_size, stride) in enumerate(specs, start=1):
        x = conv2d(
            x, filters, kernel_size, stride,
            kernel_initializer=TORCHVISION_CONV_INITIALIZER, name=f"{name}_{i}_conv",
        )
        x = batch_norm(x, name=f"{name}_{i}_bn")
        if i < len(specs):
            x = layers.ReLU(name=f"{name}_{i}_relu")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)


def basic_block(x, filters, strides=1, *, name):
    """Post-activation basic block, torchvision's `BasicBlock`.

    3x3 conv (strided) - BN - ReLU - 3x3 conv - BN, added to the shortcut
    (identity, or a 1x1 conv + BN projection when channels or stride change),
    then ReLU. Layer names as in `bottleneck_block`.

    Input shape: `(N, H, W, C_in)`. Output shape:
    `(N, ceil(H / strides), ceil(W / strides), filters)`.
    """
    shortcut = _post_activation_shortcut(x, filters, strides, name)
    for i, stride in enumerate((strides, 1), start=1):
        x = conv2d(
            x, filters, 3, stride,
            kernel_initializer=TORCHVISION_CONV_INITIALIZER, name=f"{name}_{i}_conv",
        )
        x = batch_norm(x, name=f"{name}_{i}_bn")
        if i == 1:
            x = layers.ReLU(name=f"{name}_{i}_relu")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.ReLU(name=f"{name}_out")(x)
