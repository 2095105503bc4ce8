"""The WRN variants in use today against PyTorch implementations written
here from each source project's code (tests/models/variant_reference.py):
random weights and batch-norm statistics, eval mode, logits to 1e-4 on the
TensorFlow backend in this process and on JAX and PyTorch in their own."""

import textwrap

import pytest

import keras_wrn
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import variants

torch = pytest.importorskip("torch")

from tests.helpers import backend_report  # noqa: E402

from .variant_reference import PARITY_CASES, SOURCES, WRN, parity, unused_parameters  # noqa: E402

TOLERANCE = 1e-4


@pytest.mark.parametrize("source, name, normalization", PARITY_CASES, ids=[c[0] for c in PARITY_CASES])
def test_each_variant_computes_its_sources_function(source, name, normalization):
    gap, scale = parity(source, name, normalization=normalization)
    assert scale > 1.0  # logits of a size that a wrong layer would move
    assert gap < TOLERANCE, (source, gap)


@pytest.mark.parametrize("source, option", [
    ("deepmind", {"padding": "symmetric"}), ("deepmind", {"activation": "relu"}),
    ("fixmatch", {"shortcut": "projection"}), ("torchssl", {"shortcut": "raw_projection"}),
    ("usb", {"bn_epsilon": 1e-5}), ("sam", {"padding": "symmetric"}),
])
def test_each_option_changes_the_function(source, option):
    """The references tell the options apart: one option set back to
    another value leaves the source's function."""
    import keras
    import numpy as np

    from .variant_reference import load_into_keras, randomized

    options = dict(SOURCES[source])
    reference = randomized(WRN(options.pop("form"), 16, 2, **options))
    arguments = {**variants.get_source(source).options, **option}
    model = keras_wrn.WideResNet(16, 2, input_shape=(16, 16, 3), classifier_activation=None, **arguments)
    load_into_keras(reference, model)
    images = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype("float32")
    expected = reference(torch.from_numpy(images.transpose(0, 3, 1, 2))).detach().numpy()
    gap = float(np.abs(keras.ops.convert_to_numpy(model(images, training=False)) - expected).max())
    assert gap > 1e-2, (source, option, gap)


def test_batch_norm_momentum_reaches_every_batch_norm():
    """Momentum acts in training only: one training step moves each moving
    mean by `1 - momentum` of the batch mean (PyTorch's momentum 0.001)."""
    import numpy as np

    model = keras_wrn.get_model("wrn-28-2-torchssl", depth=10, input_shape=(8, 8, 3))
    norms = [layer for layer in model.layers if layer.__class__.__name__ == "BatchNormalization"]
    assert norms and {(layer.momentum, layer.epsilon) for layer in norms} == {(0.999, 1e-3)}
    images = np.random.default_rng(0).normal(2.0, 1.0, size=(4, 8, 8, 3)).astype("float32")
    model(images, training=True)
    stem = keras_wrn.feature_extractor(model, taps=["stem"])(images)["stem"]
    batch_mean = np.asarray(stem).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(np.asarray(model.get_layer("group1_block1_bn1").moving_mean),
                               0.001 * batch_mean, rtol=1e-4, atol=1e-7)


BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import keras
    from tests.models.variant_reference import PARITY_CASES, parity
    gaps = {source: parity(source, name, normalization=norm)[0] for source, name, norm in PARITY_CASES}
    # Feature taps on this backend: named maps, the logits tap equal to the model's output.
    import numpy as np, keras_wrn
    model = keras_wrn.get_model("wrn-16-2", input_shape=(16, 16, 3), classifier_activation=None)
    taps = keras_wrn.feature_extractor(model, taps=["group1_preact", "group3", "pooled", "logits"])
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    out = {k: keras.ops.convert_to_numpy(v) for k, v in taps(x).items()}
    shapes = {k: list(v.shape) for k, v in out.items()}
    gaps["taps"] = float(np.abs(out["logits"] - keras.ops.convert_to_numpy(model(x))).max())
    print(json.dumps({"backend": keras.backend.backend(), "gaps": gaps, "shapes": shapes}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_variant_matches_its_source_on_jax_and_torch(backend):
    """And the feature taps work there."""
    report = backend_report(BACKEND_SCRIPT, backend)
    assert set(report["gaps"]) == {case[0] for case in PARITY_CASES} | {"taps"}
    for source, gap in report["gaps"].items():
        assert gap < TOLERANCE, (backend, source, gap)
    assert report["shapes"] == {"group1_preact": [2, 16, 16, 32], "group3": [2, 4, 4, 128], "pooled": [2, 128],
                                "logits": [2, 10]}


VARIANT_NAMES = [n for n in keras_wrn.list_models(family="cifar") if keras_wrn.get_model_spec(n).source != "paper"]
SOURCE_FORM = {"xternalz": "xternalz", "deepmind": "deepmind", "fixmatch": "fixmatch", "torchssl": "torchssl",
               "usb": "usb", "sam": "sam"}


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_registered_counts_equal_the_source_implementation(name):
    """Pinned parameter counts against the PyTorch reference of the same
    source (built on the meta device: no memory, every size in the fast
    tier), less the parameters its forward never reads."""
    spec = keras_wrn.get_model_spec(name)
    options = dict(SOURCES[SOURCE_FORM[spec.source]])
    with torch.device("meta"):
        reference = WRN(options.pop("form"), spec.kwargs["depth"], spec.kwargs["k"], spec.num_classes, **options)
    total = sum(p.numel() for p in reference.parameters())
    assert total - unused_parameters(reference) == spec.params
    assert {key: spec.kwargs[key] for key in variants.get_source(spec.source).options} == \
        variants.get_source(spec.source).options


def test_the_papers_models_keep_the_papers_options():
    for name in keras_wrn.list_models(use="paper", family="cifar"):
        spec = keras_wrn.get_model_spec(name)
        assert spec.source == "paper"
        assert not set(spec.kwargs) & {f for f in variants.BlockStyle.__dataclass_fields__}
    model = keras_wrn.WideResNet(16, 1, input_shape=(8, 8, 3))
    assert model.style == variants.PAPER_STYLE
    assert "group1_block1_relu1" in {layer.name for layer in model.layers}


def test_families_group_the_registry():
    assert keras_wrn.list_models(use="robustness") == [
        "wrn-28-10", "wrn-34-10", "wrn-34-20", "wrn-28-10-deepmind", "wrn-70-16-deepmind"]
    assert set(keras_wrn.list_models(use="distillation")) == {"wrn-40-1", "wrn-40-2", "wrn-16-1", "wrn-16-2"}
    assert keras_wrn.list_models(use="anomaly detection") == ["wrn-50-2-bottleneck"]
    assert len(keras_wrn.list_models(use="semi-supervised")) == 6
    with pytest.raises(InvalidArgumentError, match="Unknown use 'robust'.*robustness"):
        keras_wrn.list_models(use="robust")


def test_an_ambiguous_name_is_refused_with_its_candidates():
    with pytest.raises(keras_wrn.UnknownModelError, match=r"'wrn-34-2' is ambiguous.*wrn-34-2-imagenet.*"
                                                          r"WideResNet\(depth=34, k=2\)"):
        keras_wrn.get_model_spec("wrn-34-2")
    with pytest.raises(keras_wrn.UnknownModelError, match="'wrn-18-2' is not registered.*wrn-18-2-imagenet"):
        keras_wrn.get_model("wrn-18-2")
    assert keras_wrn.get_model_spec("wrn-34-10").family == "cifar"


@pytest.mark.parametrize("arguments, message", [
    ({"activation": "gelu"}, "Unknown activation 'gelu'.*relu, silu, leaky_relu, swish"),
    ({"activation": "relu", "leaky_relu_slope": 0.2}, "leaky_relu_slope applies to activation='leaky_relu'"),
    ({"activation": "leaky_relu", "leaky_relu_slope": -0.1}, r"leaky_relu_slope must be a number in \[0.0, 1.0\)"),
    ({"bn_momentum": 1.0}, "bn_momentum must be"),
    ({"bn_epsilon": 0}, "bn_epsilon must be"),
    ({"padding": "valid"}, "Unknown padding 'valid'.*symmetric, same"),
    ({"shortcut": "raw"}, "Unknown shortcut 'raw'.*projection, raw_projection, raw_input, pool_pad"),
    ({"conv_bias": 1}, "conv_bias must be True or False"),
    ({"include_preprocessing": "cifar"}, "Unknown normalisation 'cifar'.*wrn-cifar, cifar10, cifar100"),
])
def test_bad_options_are_refused_naming_the_valid_ones(arguments, message):
    with pytest.raises(InvalidArgumentError, match=message):
        keras_wrn.WideResNet(16, 1, input_shape=(8, 8, 3), **arguments)


def test_pool_pad_needs_widening_groups():
    with pytest.raises(InvalidArgumentError, match="shortcut='pool_pad'.*k >= 1"):
        keras_wrn.WideResNet(16, 0.5, shortcut="pool_pad", input_shape=(8, 8, 3))


def test_swish_is_silu_in_the_config():
    model = keras_wrn.WideResNet(10, 1, activation="Swish", input_shape=(8, 8, 3))
    assert model.get_config()["activation"] == "silu"
    assert "head_silu" in {layer.name for layer in model.layers}
