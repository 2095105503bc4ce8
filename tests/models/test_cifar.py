"""The CIFAR WRN-n-k against the paper's numbers and the official code."""

import numpy as np
import pytest
from keras import layers

import keras_wrn
from keras_wrn.models.block_types import blocks_per_group, parse_block_type
from tests.helpers import official_params

from .official_reference import wrn_forward


def registered(depth, k, **kwargs):
    """The registry's spec of WRN-depth-k built with `kwargs` (every row of
    the paper's tables is registered). Its pinned counts are checked against
    the built model once, in tests/models/test_registry.py; here they are
    checked against the paper, without building the model again."""
    wanted = {"depth": depth, "k": k, **kwargs}
    matches = [spec for spec in map(keras_wrn.get_model_spec, keras_wrn.list_models(family="cifar"))
               if {key: spec.kwargs.get(key) for key in wanted} == wanted
               and set(spec.kwargs) - set(wanted) <= {"dropout_rate"} and not spec.kwargs.get("dropout_rate")]
    assert len(matches) == 1, f"WRN-{depth}-{k} {kwargs} is not registered once: {[m.name for m in matches]}"
    return matches[0]


@pytest.mark.parametrize(
    "depth, k, expected",
    [(28, 10, 36_479_194), (40, 4, 8_949_210), (16, 8, 10_961_370)],
)
def test_exact_parameter_counts(depth, k, expected):
    assert registered(depth, k).params == expected


# Table 4: depth, k, parameters in millions.
TABLE_4 = [
    (40, 1, 0.6), (40, 2, 2.2), (40, 4, 8.9), (40, 8, 35.7), (28, 10, 36.5),
    (28, 12, 52.5), (22, 8, 17.2), (22, 10, 26.8), (16, 8, 11.0), (16, 10, 17.1),
]


@pytest.mark.parametrize("depth, k, millions", TABLE_4)
def test_table_4_parameter_counts(depth, k, millions):
    assert round(registered(depth, k).params / 1e6, 1) == millions


# Table 2 (k = 2): block type, depth, parameters in millions.
TABLE_2 = [
    ("B(1,3,1)", 40, 1.4), ("B(3,1)", 40, 1.2), ("B(1,3)", 40, 1.3),
    ("B(3,1,1)", 40, 1.3), ("B(3,3)", 28, 1.5), ("B(3,1,3)", 22, 1.1),
]


@pytest.mark.parametrize("block_type, depth, millions", TABLE_2)
def test_table_2_block_types(block_type, depth, millions):
    spec = registered(depth, 2, **({} if block_type == "B(3,3)" else {"block_type": block_type}))
    assert round(spec.params / 1e6, 1) == millions


@pytest.mark.parametrize("l, blocks", [(1, 12), (2, 6), (3, 4), (4, 3)])
def test_table_3_deepening_factor_keeps_wrn_40_2_at_2_2m(l, blocks):
    spec = registered(40, 2, **({} if l == 2 else {"deepening_factor": l}))
    assert round(spec.params / 1e6, 1) == 2.2
    assert blocks_per_group(40, (3,) * l) == blocks


def test_a_deepened_block_has_l_convolutions():
    model = keras_wrn.WideResNet(40, 2, deepening_factor=3, input_shape=(8, 8, 3))
    assert model.blocks_per_group == 4
    assert [x.name for x in model.layers if x.name.startswith("group1_block1_conv")] == \
        ["group1_block1_conv1", "group1_block1_conv2", "group1_block1_conv3"]


# GMACs per 32x32 image, computed by hand from Table 1 (Zagoruyko & Komodakis 2016).
PAPER_GMACS = [(16, 4, 0.393), (16, 8, 1.548), (16, 10, 2.412), (22, 8, 2.454),
               (40, 4, 1.299), (28, 10, 5.243), (40, 10, 8.074)]


@pytest.mark.parametrize("depth, k, gmacs", PAPER_GMACS)
def test_macs_match_hand_count(depth, k, gmacs):
    spec = registered(depth, k) if (depth, k) != (40, 10) else keras_wrn.get_model_spec("wrn-40-10-dropout")
    assert spec.macs / 1e9 == pytest.approx(gmacs, abs=5e-4)


def test_depth_rules():
    assert blocks_per_group(28, (3, 3)) == 4
    assert blocks_per_group(22, (3, 1, 3)) == 3
    assert blocks_per_group(40, (3,)) == 12
    assert blocks_per_group(40, (3, 3, 3)) == 4
    assert parse_block_type("B(3,1,3)") == parse_block_type("b313") == (3, 1, 3)
    assert parse_block_type([1, 3]) == parse_block_type("1,3") == (1, 3)


def layer(model, name):
    return model.get_layer(name)


def test_official_structure_details():
    model = keras_wrn.WideResNet(16, 2, dropout_rate=0.3)
    # Stem: 3x3 conv to 16 channels, read directly by the first block.
    stem = layer(model, "stem_conv")
    assert stem.filters == 16 and stem.kernel_size == (3, 3)
    consumers = {node.operation.name for node in stem._outbound_nodes}
    assert consumers == {"group1_block1_bn1"}
    # Channel change: the 1x1 projection reads the block's activated input.
    shortcut = layer(model, "group1_block1_shortcut")
    assert shortcut.kernel_size == (1, 1) and not shortcut.use_bias
    relu1 = layer(model, "group1_block1_relu1")
    assert shortcut.input is relu1.output
    # Equal channels: identity shortcut from the raw block input.
    add = layer(model, "group1_block2_add")
    assert add.input[0] is layer(model, "group1_block1_add").output
    # Strides on the first conv of the first block of groups 2 and 3.
    for group in (2, 3):
        assert layer(model, f"group{group}_block1_conv1").strides == (2, 2)
        assert layer(model, f"group{group}_block1_conv2").strides == (1, 1)
        assert layer(model, f"group{group}_block1_shortcut").strides == (2, 2)
        assert layer(model, f"group{group}_block2_conv1").strides == (1, 1)
    # Dropout between the convolutions only.
    drops = [x.name for x in model.layers if isinstance(x, layers.Dropout)]
    assert drops == [f"group{g}_block{b}_dropout2" for g in (1, 2, 3) for b in (1, 2)]
    assert layer(model, "group1_block1_dropout2").rate == 0.3
    # No conv bias; Torch's BatchNorm settings.
    for x in model.layers:
        if isinstance(x, layers.Conv2D):
            assert not x.use_bias, x.name
        if isinstance(x, layers.BatchNormalization):
            assert x.epsilon == 1e-5 and x.momentum == 0.9, x.name
    assert layer(model, "predictions").use_bias


def test_k1_first_block_uses_identity():
    model = keras_wrn.WideResNet(16, 1)
    names = {x.name for x in model.layers}
    assert "group1_block1_shortcut" not in names
    assert "group2_block1_shortcut" in names


def test_initialisation_follows_official_code():
    model = keras_wrn.WideResNet(16, 8)
    kernel = np.asarray(layer(model, "group3_block2_conv2").kernel)
    fan_in = 3 * 3 * 512
    assert kernel.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.02)
    assert abs(kernel.mean()) < 0.01 * np.sqrt(2 / fan_in)
    # Untruncated: a normal sample of 2.4M values has tails beyond 2 std.
    assert np.abs(kernel).max() > 3 * np.sqrt(2 / fan_in)
    gamma = np.asarray(layer(model, "group1_block1_bn1").gamma)
    assert gamma.min() >= 0 and gamma.max() < 1 and gamma.std() > 0.1
    np.testing.assert_array_equal(np.asarray(layer(model, "predictions").bias), 0)



def load_official(model, params):
    """Copies official-named parameters into keras_wrn layers by name."""
    def keras_name(key):
        if key == "conv0":
            return "stem_conv"
        if key == "bn":
            return "head_bn"
        if key == "fc":
            return "predictions"
        group, block, part = key.split(".")
        g, b = int(group[5:]) + 1, int(block[5:]) + 1
        if part == "convdim":
            return f"group{g}_block{b}_shortcut"
        return f"group{g}_block{b}_{part[:-1]}{int(part[-1]) + 1}"

    modules = {}
    for key, value in params.items():
        module, _, attr = key.rpartition(".") if key.split(".")[-1] in (
            "weight", "bias", "running_mean", "running_var") else (key, "", "weight")
        modules.setdefault(module, {})[attr] = value
    for module, tensors in modules.items():
        target = model.get_layer(keras_name(module))
        if isinstance(target, layers.Conv2D):
            target.set_weights([tensors["weight"].transpose(2, 3, 1, 0)])
        elif isinstance(target, layers.BatchNormalization):
            target.set_weights([tensors[a] for a in ("weight", "bias", "running_mean", "running_var")])
        else:
            target.set_weights([tensors["weight"].T, tensors["bias"]])


@pytest.mark.parametrize("depth, k, size", [(10, 1, 32), (10, 2, 32), (16, 2, 9)])
def test_logits_match_official_functional_code(depth, k, size):
    rng = np.random.default_rng(depth * 10 + k)
    params = official_params(depth, k, 7, rng)
    model = keras_wrn.WideResNet(
        depth, k, num_classes=7, classifier_activation=None, input_shape=(size, size, 3)
    )
    load_official(model, params)
    images = rng.normal(0, 1, (2, size, size, 3))
    expected = wrn_forward(images.transpose(0, 3, 1, 2), params, depth)
    got = np.asarray(model(images.astype("float32"), training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_stochastic_depth_decays_linearly_and_is_identity_at_test():
    model = keras_wrn.WideResNet(16, 1, stochastic_depth_rate=0.5)
    rates = [x.rate for x in model.layers if isinstance(x, keras_wrn.StochasticDepth)]
    assert rates == pytest.approx([0.5 * i / 6 for i in range(1, 7)])
    plain = keras_wrn.WideResNet(16, 1)
    for source in model.layers:
        if source.weights:
            plain.get_layer(source.name).set_weights(source.get_weights())
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(model(images, training=False)), np.asarray(plain(images, training=False)),
        atol=1e-6,
    )


def test_stochastic_depth_layer_drops_whole_samples():
    layer_ = keras_wrn.StochasticDepth(0.5, seed=1)
    x = np.ones((4000, 2, 2, 3), "float32")
    y = np.asarray(layer_(x, training=True))
    per_sample = y.reshape(4000, -1)
    assert set(np.unique(per_sample)) == {0.0, 2.0}
    assert (per_sample.min(axis=1) == per_sample.max(axis=1)).all()
    assert per_sample[:, 0].mean() == pytest.approx(1.0, abs=0.06)
    np.testing.assert_array_equal(np.asarray(layer_(x, training=False)), x)


def test_layer_names_are_deterministic():
    first = [x.name for x in keras_wrn.WideResNet(16, 2).layers]
    second = [x.name for x in keras_wrn.WideResNet(16, 2).layers]
    assert first == second
    assert {"stem_conv", "group2_block1_conv2", "group2_block1_shortcut",
            "head_bn", "head_relu", "avg_pool", "predictions"} <= set(first)


def test_include_top_false_and_pooling_shapes():
    assert keras_wrn.WideResNet(16, 2, include_top=False).output_shape == (None, 8, 8, 128)
    assert keras_wrn.WideResNet(16, 2, include_top=False, pooling="max").output_shape == (None, 128)
    model = keras_wrn.WideResNet(16, 2, include_top=False, input_shape=(None, None, 3), pooling="avg")
    assert np.asarray(model(np.zeros((1, 40, 24, 3), "float32"))).shape == (1, 128)
    assert keras_wrn.WideResNet(28, 10, num_classes=100).output_shape == (None, 100)


def test_input_tensor_from_another_graph():
    import keras

    images = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255)(images)
    model = keras_wrn.WideResNet(10, 1, num_classes=4, input_tensor=scaled)
    assert model.inputs[0] is images
    assert model.output_shape == (None, 4)
    with pytest.raises(ValueError, match="does not match"):
        keras_wrn.WideResNet(10, 1, input_tensor=scaled, input_shape=(16, 16, 3))


def test_mixed_precision_builds_and_runs():
    import keras

    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = keras_wrn.WideResNet(10, 2, num_classes=5)
        out = model(np.zeros((2, 32, 32, 3), "float32"), training=False)
        assert model.get_layer("group1_block1_conv1").compute_dtype == "float16"
        assert model.get_layer("group1_block1_conv1").kernel.dtype == "float32"
        assert np.isfinite(np.asarray(out, "float32")).all()
    finally:
        keras.config.set_dtype_policy("float32")
