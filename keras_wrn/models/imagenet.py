"""ImageNet Wide ResNets (Zagoruyko & Komodakis 2016, section 4.3, Tables 7-8).

- WRN-50-2-bottleneck / WRN-101-2-bottleneck: post-activation ResNet-50/101
  (v1.5, the stride on the 3x3 conv, as torchvision) with the inner 1x1-3x3
  width of every bottleneck doubled: inner widths 128/256/512/1024, outputs
  256/512/1024/2048. The same network as torchvision's `wide_resnet50_2`
  (68,883,240 parameters with 1000 classes) and `wide_resnet101_2`.
- WRN-18-w / WRN-34-w: post-activation non-bottleneck ResNet-18/34 with stage
  widths 64w/128w/256w/512w (the stem stays 64) and a 1x1 conv + BN
  projection whenever channels or stride change (Table 7).

    stage    output    layers
    conv1    112x112   7x7/2 conv 64, BN, ReLU   (`conv1_conv`, `conv1_bn`, ...)
    pool1    56x56     3x3/2 max pool            (`pool1_pool`)
    conv2    56x56     blocks, stride 1          (`conv2_block1_1_conv`, ...)
    conv3    28x28     blocks, first strides 2
    conv4    14x14     blocks, first strides 2
    conv5    7x7       blocks, first strides 2
    head     1x1       global average pool, dense (`avg_pool`, `predictions`)

Layer names are those of keras.applications' ResNet50, so torchvision's
`layer1.0.conv1` is `conv2_block1_1_conv` here.
"""

import math

import keras
from keras import layers

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import blocks
from keras_wrn.models.arguments import refuse_unknown_arguments
from keras_wrn.models.builder import Architecture, ClassifierModel

IMAGENET_INPUT_SIZE = 224
# Total stride 32: a 32x32 image reaches conv5 at 1x1.
IMAGENET_MIN_INPUT_SIZE = 32
STAGE_PLANES = (64, 128, 256, 512)


def _bottleneck_stage_block(x, planes, width, strides, *, name):
    """`width` scales the inner 1x1-3x3 width; the output is `4 * planes`."""
    return blocks.bottleneck_block(x, planes, width, strides, name=name)


def _basic_stage_block(x, planes, width, strides, *, name):
    """`width` scales the whole block: `int(planes * width)` channels."""
    return blocks.basic_block(x, int(planes * width), strides, name=name)


# The block of a stage, by name: `(x, planes, width, strides, name) -> x`.
BLOCK_FUNCTIONS = {"bottleneck": _bottleneck_stage_block, "basic": _basic_stage_block}


def _classifier_initializers(channels):
    """torchvision's nn.Linear init: U(+-1/sqrt(fan_in)) for weight and bias."""
    bound = 1.0 / math.sqrt(channels)
    kernel = keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform")
    return kernel, keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="keras_wrn")
class ImageNetWideResNet(ClassifierModel):
    """A wide post-activation ResNet for ImageNet-sized images.

    Args:
        block: `"bottleneck"` (WRN-50-2 style: `width` scales the inner
            1x1-3x3 width, outputs stay 4 * 64/128/256/512) or `"basic"`
            (WRN-18/34 style: `width` scales every stage, 64w ... 512w).
        stage_blocks: blocks per stage, e.g. `(3, 4, 6, 3)`.
        width: widening factor w > 0 (Table 7: 1.0, 1.5, 2.0, 3.0).
        num_classes, include_top, weights, input_tensor, input_shape,
        pooling, classifier_activation, name: as in keras.applications;
            `input_shape` defaults to `(224, 224, 3)`, at least 32x32;
            `weights` a tag of the weights table (`"imagenet"`, ...), a
            PyTorch checkpoint or a keras_wrn weights file.
        include_preprocessing: as `keras_wrn.WideResNet`: by default a model
            with weights from the table takes RGB pixels 0-255 and applies
            the ImageNet mean/std itself; False leaves that to
            `keras_wrn.preprocess_input`.

    BatchNorm eps 1e-5, momentum 0.9; convolutions bias-free, initialised
    as torchvision (kaiming normal, fan_out); symmetric Torch padding.

    Input shape: `(N, H, W, 3)`: RGB pixels 0-255 with preprocessing, else
    images normalised with the ImageNet mean/std.
    Output shape: `(N, num_classes)` with the top; `(N, H/32, W/32, C)`
    features without it (`(N, C)` with pooling), C = 2048 for bottleneck,
    `int(512 * width)` for basic.
    """

    def __init__(
        self,
        block="bottleneck",
        stage_blocks=(3, 4, 6, 3),
        width=2.0,
        num_classes=1000,
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
        if block not in BLOCK_FUNCTIONS:
            raise InvalidArgumentError(
                f"Unknown block {block!r}; ImageNet Wide ResNets use "
                f"{sorted(BLOCK_FUNCTIONS)}. Received: block={block!r}"
            )
        stage_blocks = tuple(stage_blocks)
        if len(stage_blocks) != 4 or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in stage_blocks
        ):
            raise InvalidArgumentError(
                f"stage_blocks must be four positive integers, e.g. (3, 4, 6, 3). "
                f"Received: stage_blocks={stage_blocks!r}"
            )
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise InvalidArgumentError(f"The width factor must be > 0. Received: width={width!r}")
        if int(64 * width) < 1:
            raise InvalidArgumentError(
                f"The width factor w={width} leaves a stage with no channels. "
                f"Received: width={width!r}"
            )
        label = imagenet_label(block, stage_blocks, width)
        block_fn = BLOCK_FUNCTIONS[block]

        def body(x):
            x = blocks.conv2d(
                x, 64, 7, 2, kernel_initializer=blocks.TORCHVISION_CONV_INITIALIZER, name="conv1_conv",
            )
            x = blocks.batch_norm(x, name="conv1_bn")
            x = layers.ReLU(name="conv1_relu")(x)
            # Zero padding equals Torch's -inf padding here: the input is >= 0.
            x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
            x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
            for stage, (planes, count) in enumerate(zip(STAGE_PLANES, stage_blocks), start=2):
                for b in range(1, count + 1):
                    strides = 2 if (b == 1 and stage > 2) else 1
                    x = block_fn(x, planes, width, strides, name=f"conv{stage}_block{b}")
            return x

        architecture = Architecture(
            label=label,
            registry_name=label.lower() + ("" if block == "bottleneck" else "-imagenet"),
            default_name=label.lower().replace("-", "_").replace(".", "_"),
            default_size=IMAGENET_INPUT_SIZE,
            min_size=IMAGENET_MIN_INPUT_SIZE,
            classifier_initializers=_classifier_initializers,
        )
        self._build_network(
            body, architecture, weights=weights, include_preprocessing=include_preprocessing,
            input_tensor=input_tensor, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
            pooling=pooling, classifier_activation=classifier_activation, name=name, kwargs=kwargs,
        )
        self.block = block
        self.stage_blocks = stage_blocks
        self.width = width

    def _architecture_config(self):
        return {"block": self.block, "stage_blocks": list(self.stage_blocks), "width": self.width}


def imagenet_label(block, stage_blocks, width):
    """The paper's name: `WRN-50-2-bottleneck`, `WRN-18-1.5`."""
    per_block = 3 if block == "bottleneck" else 2
    depth = per_block * sum(stage_blocks) + 2
    label = f"WRN-{depth}-{width:g}"
    return label + "-bottleneck" if block == "bottleneck" else label


def WideResNet50_2(num_classes=1000, name="wide_resnet50_2", **kwargs):
    """WRN-50-2-bottleneck (Table 8: 21.9 / 6.03 top-1/top-5 error, 68.9M
    parameters); torchvision's `wide_resnet50_2`. Other arguments
    (`include_top`, `weights`, `input_shape`, ...) as `ImageNetWideResNet`."""
    return ImageNetWideResNet(
        "bottleneck", (3, 4, 6, 3), 2.0, num_classes=num_classes, name=name, **kwargs
    )


def WideResNet101_2(num_classes=1000, name="wide_resnet101_2", **kwargs):
    """WRN-101-2-bottleneck; torchvision's `wide_resnet101_2` (126.9M
    parameters). Arguments as `WideResNet50_2`."""
    return ImageNetWideResNet(
        "bottleneck", (3, 4, 23, 3), 2.0, num_classes=num_classes, name=name, **kwargs
    )


def WideResNet18(width=1.0, num_classes=1000, **kwargs):
    """Wide non-bottleneck WRN-18 at width w (Table 7: w = 1.0, 1.5, 2.0, 3.0
    give 11.7M, 25.9M, 45.6M, 101.8M parameters). Arguments as
    `WideResNet50_2`."""
    return ImageNetWideResNet("basic", (2, 2, 2, 2), width, num_classes=num_classes, **kwargs)


def WideResNet34(width=1.0, num_classes=1000, **kwargs):
    """Wide non-bottleneck WRN-34 at width w (Table 7: w = 1.0, 1.5, 2.0 give
    21.8M, 48.6M, 86.0M parameters). Arguments as `WideResNet50_2`."""
    return ImageNetWideResNet("basic", (3, 4, 6, 3), width, num_classes=num_classes, **kwargs)
