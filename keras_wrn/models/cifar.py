"""The CIFAR/SVHN Wide ResNet WRN-n-k (Zagoruyko & Komodakis 2016, Table 1).

    group   output   layers
    stem    32x32    3x3 conv, 16                      (`stem_conv`)
    group1  32x32    N blocks B(M) of width 16k
    group2  16x16    N blocks B(M) of width 32k, first block strides 2
    group3  8x8      N blocks B(M) of width 64k, first block strides 2
    head    1x1      BN-ReLU, global average pool, dense

Depth and blocks. The paper names a network by its depth n, and the depth
fixes N, the number of blocks in each of the three groups. The text does not
spell the rule out; the parameter counts of Tables 2 and 3 pin it down:

- The six block types of Table 2 keep the B(3,3) convention,
  N = (n - 4) / 6, whatever the number of convolutions in a block:

      block     depth  N   params (ours)  Table 2
      B(3,3)    28     4   1,467,610      1.5M
      B(3,1,3)  22     3   1,145,498      1.1M
      B(1,3,1)  40     6   1,429,082      1.4M
      B(1,3)    40     6   1,297,370      1.3M
      B(3,1)    40     6   1,211,354      1.2M
      B(3,1,1)  40     6   1,343,066      1.3M

  (So WRN-40-2 with B(1,3,1) has 3 * 6 * 3 = 54 convolutions in its
  blocks. Counting every convolution instead, N = (n - 4) / 9, gives
  0.74M, 0.95M and 0.87M for the three-convolution rows: not the paper's.)
- Blocks of l 3x3 convolutions (Table 3's deepening factor) count every
  convolution, N = (n - 4) / (3 l): WRN-40-2 with l = 1, 2, 3, 4 has
  N = 12, 6, 4, 3 and 2,243,546 parameters in every case (Table 3: 2.2M).

The two rules agree on B(3,3) (l = 2). A depth for which N is not a positive
integer is rejected with the valid depths.
"""

import keras

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import blocks
from keras_wrn.models.arguments import refuse_unknown_arguments
from keras_wrn.models.block_types import blocks_per_group, format_block_type, registry_suffix, resolve_block_type
from keras_wrn.models.builder import Architecture, ClassifierModel
from keras_wrn.models.variants import PAPER_STYLE, BlockStyle

CIFAR_INPUT_SIZE = 32
# Two stride-2 groups: a 4x4 image reaches group3 at 1x1.
CIFAR_MIN_INPUT_SIZE = 4


def group_widths(k):
    """Output channels of the three groups: `int(16k), int(32k), int(64k)`."""
    return tuple(int(base * k) for base in (16, 32, 64))


def default_name(depth, k, kernel_sizes):
    k_text = f"{k:g}".replace(".", "_")
    name = f"wrn_{depth}_{k_text}"
    if kernel_sizes != (3, 3):
        name += "_b" + "".join(str(s) for s in kernel_sizes)
    return name


# Strides of the first block of each group (Table 1: conv3 and conv4 halve the map).
GROUP_STRIDES = (1, 2, 2)


def group(x, index, width, strides, kernel_sizes, *, dropout_rate, drop_path_rates, style=PAPER_STYLE):
    """Table 1's `conv{index+1}` group (our `group{index}`): one block B(M)
    of `width` channels per rate of `drop_path_rates` (its stochastic-depth
    rate), the first with `strides` (the paper's code: `group()`), each in
    the variant's `style`.

    Input shape: `(N, H, W, C)`. Output shape: `(N, H / strides, W / strides, width)`.
    """
    for b in range(len(drop_path_rates)):
        x = blocks.wide_block(
            x, width, kernel_sizes, strides=strides if b == 0 else 1, dropout_rate=dropout_rate,
            drop_path_rate=drop_path_rates[b], style=style, first_in_network=index == 1 and b == 0,
            name=f"group{index}_block{b + 1}",
        )
    return x


def _classifier_initializers(channels):
    return blocks.WRN_CONV_INITIALIZER, "zeros"


@keras.saving.register_keras_serializable(package="keras_wrn")
class WideResNet(ClassifierModel):
    """Wide Residual Network WRN-depth-k for CIFAR/SVHN-sized images.

    Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016
    (arXiv:1605.07146), Table 1, faithful to the official code: a 3x3 stem
    conv to 16 channels with no BN after it; pre-activation blocks (see
    `keras_wrn.models.blocks.wide_block`); the stride on the first
    convolution of the first block of groups 2 and 3; no conv biases;
    BatchNorm eps 1e-5 and momentum 0.9 (Torch's 0.1); convolutions and the
    classifier initialised N(0, 2 / fan_in), BN gamma ~ U[0, 1).

    Args:
        depth: n in WRN-n-k: `6 N + 4` for the block types of Table 2 (16,
            22, 28, 40, ...), `3 l N + 4` for l 3x3 convolutions per block;
            N blocks per group. See the module docstring for the rule.
        k: widening factor (> 0); group widths are 16k, 32k, 64k.
        num_classes: classifier width when `include_top`.
        block_type: kernel sizes of a block: `"B(3,3)"` (default),
            `"B(3,1,3)"`, `"B(1,3,1)"`, `"B(1,3)"`, `"B(3,1)"`, `"B(3,1,1)"`,
            or `"B(3,3,3)"`... for l 3x3 convolutions.
        deepening_factor: shorthand for `block_type` B(3,...,3) with this
            many 3x3 convolutions (Table 3's l). Conflicts with any other
            `block_type`.
        dropout_rate: dropout between the convolutions of each block (the
            paper: 0.3 on CIFAR, 0.4 on SVHN).
        stochastic_depth_rate: drop probability of the last block, 1 - p_L
            (0.5 for Huang et al.'s p_L = 0.5); block l of L drops with
            probability `l / L * stochastic_depth_rate`. 0 disables it.
        activation: `"relu"` (the paper), `"silu"` (alias `"swish"`:
            DeepMind's robust WRNs) or `"leaky_relu"` (semi-supervised
            WRNs), in every block and the head.
        leaky_relu_slope: the negative slope of `"leaky_relu"` (0.1 in
            FixMatch and its ports).
        bn_momentum: the batch norms' moving-average momentum in Keras'
            convention (0.9 = PyTorch's 0.1; the semi-supervised WRNs'
            PyTorch 0.001 is 0.999).
        bn_epsilon: the batch norms' epsilon (1e-5; 1e-3 in TensorFlow's
            FixMatch, TorchSSL and USB).
        stem_bias: a bias on the stem convolution.
        conv_bias: biases on the block convolutions and projections.
        padding: `"symmetric"` (PyTorch) or `"same"` (TensorFlow: a
            stride-2 convolution pads only at the bottom and right).
        shortcut: `"projection"` (the paper), `"raw_projection"`,
            `"raw_input"` or `"pool_pad"`: what the first block of groups 2
            and 3 adds to its branch (`keras_wrn.models.variants`).
        include_top: whether to add global pooling and the classifier.
        weights: None (random init), a tag of the weights table
            (`"cifar10"` for WRN-16-8; `keras_wrn.list_models(pretrained=True)`),
            or the path to a `.weights.h5`, `.keras` or layer-weights `.npz`
            file saved from this architecture.
        include_preprocessing: None (default): normalise inside the model
            when the weights come from the table, with their statistics, so
            the model takes RGB pixels 0-255; True: the same, required;
            False: never (feed inputs normalised as in training); a named
            normalisation (`"cifar10"`, `"cifar100"`: RobustBench's
            DMWideResNet constants; `"minus_one_to_one"`: `2x - 1`;
            `"wrn-cifar"`, `"imagenet"`); or `{"mean": [...], "std": [...]}`
            per channel, pixels 0-255.
        input_tensor: optional Keras tensor to build the model on.
        input_shape: image shape without the batch axis; default
            `(32, 32, 3)`; spatial dims may be None; at least 4x4.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classifier_activation: activation of `predictions`; None returns
            logits (what training uses).
        name: model name; default e.g. `"wrn_28_10"`.

    Input shape: `(N, H, W, C)` images (channels_last): RGB pixels 0-255 with
    preprocessing, else normalised as the training data was. Output shape: `(N, num_classes)` with the top;
    `(N, H/4, W/4, 64k)` features without it (`(N, 64k)` with pooling).
    """

    def __init__(
        self,
        depth=28,
        k=10,
        num_classes=10,
        block_type="B(3,3)",
        deepening_factor=None,
        dropout_rate=0.0,
        stochastic_depth_rate=0.0,
        activation="relu",
        leaky_relu_slope=0.1,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        stem_bias=False,
        conv_bias=False,
        padding="symmetric",
        shortcut="projection",
        include_top=True,
        weights=None,
        include_preprocessing=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classifier_activation="softmax",
        name=None,
        **kwargs,
    ):
        refuse_unknown_arguments(type(self), kwargs)
        kernel_sizes = resolve_block_type(block_type, deepening_factor)
        n_blocks = blocks_per_group(depth, kernel_sizes)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not k > 0:
            raise InvalidArgumentError(f"The widening factor k must be > 0. Received: k={k!r}")
        if int(16 * k) < 1:
            raise InvalidArgumentError(
                f"The widening factor k={k} leaves group 1 with no channels "
                f"(int(16 * k) = 0); use k >= 1/16. Received: k={k!r}"
            )
        for arg, value in (("dropout_rate", dropout_rate), ("stochastic_depth_rate", stochastic_depth_rate)):
            if not 0.0 <= value < 1.0:
                raise InvalidArgumentError(f"{arg} must be in [0, 1). Received: {arg}={value!r}")
        style = BlockStyle.checked(
            activation=activation, leaky_relu_slope=leaky_relu_slope, bn_momentum=bn_momentum,
            bn_epsilon=bn_epsilon, stem_bias=stem_bias, conv_bias=conv_bias, padding=padding, shortcut=shortcut)
        if style.shortcut == "pool_pad" and k < 1:
            raise InvalidArgumentError(
                f"shortcut='pool_pad' widens the input with zero channels, so every group must be at least as "
                f"wide as the one before (k >= 1). Use shortcut='projection' for k < 1. Received: k={k!r}")
        # Block l of L drops with probability l / L * stochastic_depth_rate.
        rates = [stochastic_depth_rate * (i + 1) / (3 * n_blocks) for i in range(3 * n_blocks)]
        widths = group_widths(k)

        def body(x):
            x = blocks.conv2d(x, 16, 3, kernel_initializer=blocks.WRN_CONV_INITIALIZER, use_bias=style.stem_bias,
                              padding=style.padding, name="stem_conv")
            for index, (width, strides) in enumerate(zip(widths, GROUP_STRIDES)):
                x = group(x, index + 1, width, strides, kernel_sizes, dropout_rate=dropout_rate,
                          drop_path_rates=rates[index * n_blocks:(index + 1) * n_blocks], style=style)
            return blocks.bn_act(x, "head", style=style)  # head_bn, head_relu

        architecture = Architecture(
            label=f"WRN-{depth}-{k:g}",
            registry_name=f"wrn-{depth}-{k:g}{registry_suffix(kernel_sizes)}",
            default_name=default_name(depth, k, kernel_sizes),
            default_size=CIFAR_INPUT_SIZE,
            min_size=CIFAR_MIN_INPUT_SIZE,
            classifier_initializers=_classifier_initializers,
        )
        self._build_network(
            body, architecture, weights=weights, include_preprocessing=include_preprocessing,
            input_tensor=input_tensor, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
            pooling=pooling, classifier_activation=classifier_activation, name=name, kwargs=kwargs,
        )
        self.depth = depth
        self.k = k
        self.block_type = format_block_type(kernel_sizes)
        self.dropout_rate = dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.style = style
        self.blocks_per_group = n_blocks

    def _architecture_config(self):
        return {
            "depth": self.depth,
            "k": self.k,
            "block_type": self.block_type,
            "dropout_rate": self.dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
            **self.style.to_config(),
        }
