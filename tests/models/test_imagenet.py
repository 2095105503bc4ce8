"""ImageNet WRNs against torchvision's architecture and Table 7."""

import pytest
from keras import layers

import keras_wrn


def test_wrn_50_2_is_torchvision_wide_resnet50_2():
    model = keras_wrn.WideResNet50_2()
    assert keras_wrn.count_params(model) == 68_883_240
    assert model.output_shape == (None, 1000)
    # ResNet v1.5: the stride sits on the 3x3 conv; projections on each
    # stage's first block; inner width doubled, outputs as ResNet-50.
    assert model.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert model.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert model.get_layer("conv3_block1_0_conv").strides == (2, 2)
    assert model.get_layer("conv2_block1_1_conv").filters == 128
    assert model.get_layer("conv5_block3_2_conv").filters == 1024
    assert model.get_layer("conv5_block3_3_conv").filters == 2048
    names = {x.name for x in model.layers}
    assert {f"conv{s}_block1_0_conv" for s in (2, 3, 4, 5)} <= names
    assert "conv2_block2_0_conv" not in names
    assert keras_wrn.count_macs(model) / 1e9 == pytest.approx(11.40, abs=5e-3)


def test_wrn_101_2_matches_torchvision_count():
    # Pinned in the registry, which tests/models/test_registry.py checks against the built model.
    assert keras_wrn.get_model_spec("wrn-101-2-bottleneck").params == 126_886_696


# Table 7: parameters in millions.
TABLE_7 = [(18, 1.0, 11.7), (18, 1.5, 25.9), (18, 2.0, 45.6), (18, 3.0, 101.8),
           (34, 1.0, 21.8), (34, 1.5, 48.6), (34, 2.0, 86.0)]


@pytest.mark.parametrize("depth, width, millions", TABLE_7)
def test_table_7_parameter_counts(depth, width, millions):
    # The registry's pinned counts, checked against the built models in tests/models/test_registry.py.
    spec = keras_wrn.get_model_spec(f"wrn-{depth}-{width:g}-imagenet")
    assert spec.kwargs == {"width": width} and spec.builder.endswith(f"WideResNet{depth}")
    assert round(spec.params / 1e6, 1) == millions


def test_wide_basic_projection_whenever_channels_change():
    plain = {x.name for x in keras_wrn.WideResNet18(1.0).layers}
    assert "conv2_block1_0_conv" not in plain  # 64 -> 64, stride 1: identity
    wide = keras_wrn.WideResNet18(1.5)
    assert "conv2_block1_0_conv" in {x.name for x in wide.layers}  # 64 -> 96
    assert [wide.get_layer(f"conv{s}_block1_1_conv").filters for s in (2, 3, 4, 5)] == [96, 192, 384, 768]
    assert wide.get_layer("conv1_conv").filters == 64


def test_post_activation_and_torch_padding():
    model = keras_wrn.WideResNet18(1.0, input_shape=(64, 64, 3))
    assert model.get_layer("conv1_pad").padding == ((3, 3), (3, 3))
    assert model.get_layer("pool1_pad").padding == ((1, 1), (1, 1))
    assert isinstance(model.get_layer("conv2_block1_out"), layers.ReLU)
    for x in model.layers:
        if isinstance(x, layers.BatchNormalization):
            assert x.epsilon == 1e-5 and x.momentum == 0.9


def test_imagenet_feature_shapes():
    model = keras_wrn.WideResNet50_2(include_top=False, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 2, 2, 2048)
    model = keras_wrn.WideResNet34(2.0, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    assert model.output_shape == (None, 1024)
