"""Feature taps against PyTorch: RepDistiller's `is_feat=True, preact=True`
features of a WRN-16-2 (the xternalz reference with forward hooks) and
torchvision's WRN-50-2 `layer2`/`layer3` (PatchCore's maps); the extractor
as a `.keras` file (its SavedModel export: tests/export/test_features.py)."""

import keras
import numpy as np
import pytest

import keras_wrn
from keras_wrn.errors import InvalidArgumentError

torch = pytest.importorskip("torch")

from .variant_reference import SOURCES, WRN, load_into_keras, randomized  # noqa: E402

DISTILLATION_TAPS = ["stem", "group1", "group2", "group3", "group1_preact", "group2_preact", "group3_preact",
                     "pooled", "logits"]


def repdistiller_features(reference, images):
    """RepDistiller's wrn.py forward with `is_feat=True, preact=True`:
    f0 = conv1 output; f1..f3 the groups' outputs, or with preact the next
    stage's first batch norm applied to them (block2/block3's first bn1, the
    head bn1); f4 the pooled features; then the logits."""
    x = torch.from_numpy(images.transpose(0, 3, 1, 2))
    with torch.no_grad():
        f0 = reference.conv1(x)
        f1 = reference.block1.layer(f0)
        f2 = reference.block2.layer(f1)
        f3 = reference.block3.layer(f2)
        pooled = reference.relu(reference.bn1(f3)).mean(dim=(2, 3))
        features = {
            "stem": f0, "group1": f1, "group2": f2, "group3": f3,
            "group1_preact": reference.block2.layer[0].bn1(f1), "group2_preact": reference.block3.layer[0].bn1(f2),
            "group3_preact": reference.bn1(f3), "pooled": pooled, "logits": reference.fc(pooled),
        }
    return {tap: value.numpy().transpose(0, 2, 3, 1) if value.ndim == 4 else value.numpy()
            for tap, value in features.items()}


@pytest.fixture(scope="module")
def distillation_pair():
    options = dict(SOURCES["xternalz"])
    reference = randomized(WRN(options.pop("form"), 16, 2, **options), seed=3)
    model = keras_wrn.get_model("wrn-16-2", input_shape=(16, 16, 3), classifier_activation=None)
    load_into_keras(reference, model)
    images = np.random.default_rng(3).normal(size=(2, 16, 16, 3)).astype("float32")
    return reference, model, images


def test_taps_equal_repdistillers_features(distillation_pair):
    reference, model, images = distillation_pair
    extractor = keras_wrn.feature_extractor(model, taps=DISTILLATION_TAPS)
    got = {tap: keras.ops.convert_to_numpy(value) for tap, value in extractor(images).items()}
    expected = repdistiller_features(reference, images)
    assert list(got) == DISTILLATION_TAPS
    for tap in DISTILLATION_TAPS:
        scale = np.abs(expected[tap]).max()
        assert got[tap].shape == expected[tap].shape, tap
        np.testing.assert_allclose(got[tap], expected[tap], atol=1e-5 * max(scale, 1.0), err_msg=tap)


def test_default_taps_and_shapes():
    model = keras_wrn.WideResNet(16, 2, input_shape=(32, 32, 3))
    extractor = keras_wrn.feature_extractor(model)
    assert [tuple(t.shape) for t in extractor.output.values()] == [(None, 32, 32, 32), (None, 16, 16, 64),
                                                                   (None, 8, 8, 128)]
    assert extractor.name == "wrn_16_2_features"
    assert extractor.count_params() == model.count_params() - model.get_layer("predictions").count_params() \
        - model.get_layer("head_bn").count_params()


def test_a_raw_input_model_has_no_preact_tap_and_unknown_taps_are_refused():
    model = keras_wrn.get_model("wrn-28-2-torchssl", depth=10, input_shape=(8, 8, 3))
    assert "group1_preact" not in keras_wrn.feature_taps(model)
    assert keras_wrn.feature_taps(model)["features"] == "head_leaky_relu"
    with pytest.raises(InvalidArgumentError, match="has no tap 'group1_preact'. Its taps: stem, group1"):
        keras_wrn.feature_extractor(model, taps=["group1_preact"])
    with pytest.raises(InvalidArgumentError, match="taps must be a non-empty list"):
        keras_wrn.feature_extractor(model, taps="group1")
    with pytest.raises(InvalidArgumentError, match="only with a registered name"):
        keras_wrn.feature_extractor(model, num_classes=3)


def test_a_registered_name_builds_with_overrides():
    extractor = keras_wrn.feature_extractor("wrn-40-1", taps=["pooled"], input_shape=(8, 8, 3), num_classes=4)
    assert tuple(extractor.output["pooled"].shape) == (None, 64)


def test_extractor_saves_and_loads_as_keras(distillation_pair, tmp_path):
    _, model, images = distillation_pair
    extractor = keras_wrn.feature_extractor(model, taps=["group2", "group3_preact", "logits"])
    path = tmp_path / "features.keras"
    extractor.save(path)
    loaded = keras.saving.load_model(path)
    before, after = extractor(images), loaded(images)
    for tap in before:
        np.testing.assert_array_equal(np.asarray(after[tap]), np.asarray(before[tap]))


@pytest.mark.slow
def test_wrn_50_2_layer2_and_layer3_equal_torchvisions(tmp_path, monkeypatch):
    """PatchCore's backbone maps: torchvision's wide_resnet50_2 (random
    weights, randomised statistics) converted, `layer2`/`layer3` compared
    with forward hooks on torchvision's modules."""
    torchvision = pytest.importorskip("torchvision")
    from tests.convert.test_torch_parity import randomise_batch_norm

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    torch.manual_seed(0)
    reference = randomise_batch_norm(torchvision.models.wide_resnet50_2(weights=None), seed=1)
    path = str(tmp_path / "wide_resnet50_2.pth")
    torch.save(reference.state_dict(), path)
    captured = {}
    for name in ("layer2", "layer3"):
        getattr(reference, name).register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o))
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    extractor = keras_wrn.feature_extractor("wrn-50-2-bottleneck", taps=["layer2", "layer3"], weights=path,
                                            input_shape=(64, 64, 3))
    got = extractor(x)
    for name in ("layer2", "layer3"):
        expected = captured[name].numpy().transpose(0, 2, 3, 1)
        np.testing.assert_allclose(np.asarray(got[name]), expected, atol=1e-4 * np.abs(expected).max())
