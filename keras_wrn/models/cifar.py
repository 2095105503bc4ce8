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

import re

import keras

from keras_wrn.models import blocks, common
from keras_wrn.models.errors import InvalidArgumentError

# Section 2.1, Table 2: the block types the paper studies, by kernel sizes.
PAPER_BLOCK_TYPES = ((3, 3), (3, 1, 3), (1, 3, 1), (1, 3), (3, 1), (3, 1, 1))
CIFAR_INPUT_SIZE = 32
# Two stride-2 groups: a 4x4 image reaches group3 at 1x1.
CIFAR_MIN_INPUT_SIZE = 4


def format_block_type(kernel_sizes):
    """`(3, 1, 3)` -> `"B(3,1,3)"`, the paper's notation."""
    return "B(" + ",".join(str(k) for k in kernel_sizes) + ")"


def parse_block_type(block_type):
    """Normalises a block type to a tuple of kernel sizes.

    Accepts the paper's notation (`"B(3,1,3)"`), a compact form (`"b313"`,
    `"3,1,3"`) or a sequence (`(3, 1, 3)`). Valid types are the six of
    Table 2 and B(3,...,3) with any number l >= 1 of 3x3 convolutions
    (Table 3's deepening factor).
    """
    if isinstance(block_type, str):
        text = block_type.strip().upper().replace(" ", "")
        match = re.fullmatch(r"B?\(?([0-9,]+)\)?", text)
        digits = match.group(1) if match else ""
        if "," in digits:
            parts = [p for p in digits.split(",") if p]
        else:
            parts = list(digits)
        try:
            kernel_sizes = tuple(int(p) for p in parts)
        except ValueError:
            kernel_sizes = ()
    else:
        try:
            kernel_sizes = tuple(int(k) for k in block_type)
        except (TypeError, ValueError):
            kernel_sizes = ()
    known = kernel_sizes in PAPER_BLOCK_TYPES or (
        kernel_sizes and all(k == 3 for k in kernel_sizes)
    )
    if not known:
        listed = ", ".join(format_block_type(b) for b in PAPER_BLOCK_TYPES)
        raise InvalidArgumentError(
            f"Unknown block type. The paper's block types are {listed}, and "
            f"B(3,...,3) with l 3x3 convolutions (deepening factor l >= 1). "
            f"Received: block_type={block_type!r}"
        )
    return kernel_sizes


def depth_step(kernel_sizes):
    """How much depth one more block per group adds (see the module docstring):
    6 for the block types of Table 2, 3 * l for l 3x3 convolutions."""
    if all(k == 3 for k in kernel_sizes):
        return 3 * len(kernel_sizes)
    return 6


def blocks_per_group(depth, kernel_sizes):
    """N, the number of blocks in each of the three groups, for a depth.

    `depth = depth_step(kernel_sizes) * N + 4`; raises ValueError naming the
    valid depths when N is not a positive integer.
    """
    step = depth_step(kernel_sizes)
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < step + 4
        or (depth - 4) % step
    ):
        valid = ", ".join(str(step * n + 4) for n in range(1, 7))
        raise InvalidArgumentError(
            f"depth={depth!r} is not a valid depth for a "
            f"{format_block_type(kernel_sizes)} Wide ResNet: depth must be "
            f"{step} * N + 4 for N >= 1 blocks per group ({valid}, ...). "
            f"Received: depth={depth!r}"
        )
    return (depth - 4) // step


def group_widths(k):
    """Output channels of the three groups: `int(16k), int(32k), int(64k)`."""
    return tuple(int(base * k) for base in (16, 32, 64))


def default_name(depth, k, kernel_sizes):
    k_text = f"{k:g}".replace(".", "_")
    name = f"wrn_{depth}_{k_text}"
    if kernel_sizes != (3, 3):
        name += "_b" + "".join(str(s) for s in kernel_sizes)
    return name


@keras.saving.register_keras_serializable(package="keras_wrn")
class WideResNet(common.ClassifierModel):
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
        include_top: whether to add global pooling and the classifier.
        weights: None (random init) or the path to a `.weights.h5` or
            `.keras` file saved from this architecture.
        input_tensor: optional Keras tensor to build the model on.
        input_shape: image shape without the batch axis; default
            `(32, 32, 3)`; spatial dims may be None; at least 4x4.
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        classifier_activation: activation of `predictions`; None returns
            logits (what training uses).
        name: model name; default e.g. `"wrn_28_10"`.

    Input shape: `(N, H, W, C)` float images (channels_last), normalised as
    the training data was. Output shape: `(N, num_classes)` with the top;
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
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classifier_activation="softmax",
        name=None,
        **kwargs,
    ):
        common.refuse_unknown_arguments(type(self), kwargs)
        kernel_sizes = parse_block_type(block_type)
        if deepening_factor is not None:
            if isinstance(deepening_factor, bool) or not isinstance(deepening_factor, int) or deepening_factor < 1:
                raise InvalidArgumentError(
                    f"deepening_factor (l) must be a positive integer. "
                    f"Received: deepening_factor={deepening_factor!r}"
                )
            if kernel_sizes != (3, 3) and kernel_sizes != (3,) * deepening_factor:
                raise InvalidArgumentError(
                    f"deepening_factor sets the block type to l 3x3 "
                    f"convolutions; it cannot be combined with "
                    f"block_type={format_block_type(kernel_sizes)}. Received: "
                    f"block_type={block_type!r}, deepening_factor={deepening_factor}"
                )
            kernel_sizes = (3,) * deepening_factor
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
        name = name or default_name(depth, k, kernel_sizes)
        weights = common.resolve_weights(weights, f"WRN-{depth}-{k:g}")
        common.check_head_arguments(
            include_top=include_top, pooling=pooling, num_classes=num_classes,
            weights=weights, model_name=f"WRN-{depth}-{k:g}",
        )
        img_input, inputs = common.model_inputs(
            input_tensor, input_shape,
            default_size=CIFAR_INPUT_SIZE, min_size=CIFAR_MIN_INPUT_SIZE,
            model_name=f"WRN-{depth}-{k:g}",
        )

        x = blocks.conv2d(
            img_input, 16, 3,
            kernel_initializer=blocks.WRN_CONV_INITIALIZER, name="stem_conv",
        )
        total_blocks = 3 * n_blocks
        block_index = 0
        for group, (width, stride) in enumerate(zip(group_widths(k), (1, 2, 2)), start=1):
            for b in range(1, n_blocks + 1):
                block_index += 1
                x = blocks.wide_block(
                    x,
                    width,
                    kernel_sizes,
                    strides=stride if b == 1 else 1,
                    dropout_rate=dropout_rate,
                    drop_path_rate=stochastic_depth_rate * block_index / total_blocks,
                    name=f"group{group}_block{b}",
                )
        x = blocks.bn_relu(x, "head")  # head_bn, head_relu
        outputs = common.classification_head(
            x,
            include_top=include_top,
            pooling=pooling,
            num_classes=num_classes,
            classifier_activation=classifier_activation,
            kernel_initializer=blocks.WRN_CONV_INITIALIZER,
        )
        super().__init__(inputs=inputs, outputs=outputs, name=name, **kwargs)
        self._finish_build(
            weights=weights, img_input=img_input, num_classes=num_classes,
            include_top=include_top, pooling=pooling,
            classifier_activation=classifier_activation,
        )
        self.depth = depth
        self.k = k
        self.block_type = format_block_type(kernel_sizes)
        self.dropout_rate = dropout_rate
        self.stochastic_depth_rate = stochastic_depth_rate
        self.blocks_per_group = n_blocks

    def _architecture_config(self):
        return {
            "depth": self.depth,
            "k": self.k,
            "block_type": self.block_type,
            "dropout_rate": self.dropout_rate,
            "stochastic_depth_rate": self.stochastic_depth_rate,
        }
