"""Every registered model: its pinned metadata against one full-size build
(the models under 20M parameters in the fast tier, the larger ones in the
`slow` tier); config round trip and .keras save/load at a tiny input for one
model of each kind in the fast tier (a block type of each length, a
deepening factor, dropout, an ImageNet builder), every other one in the
`slow` tier."""

import keras
import numpy as np
import pytest

import keras_wrn
from keras_wrn.models.arguments import default_input_shape

NAMES = keras_wrn.list_models()
# One of each kind: B(3,3), dropout, a three-convolution block type, a two-convolution one, a
# deepening factor, the ImageNet family's smallest member, and a variant with every option away
# from the paper's (the other variants: tests/models/test_variants.py, and slow here).
KINDS = ["wrn-40-1", "wrn-16-4-dropout", "wrn-22-2-b313", "wrn-40-2-b13", "wrn-40-2-l4", "wrn-18-1-imagenet",
         "wrn-28-2-fixmatch"]
OTHERS = sorted(set(NAMES) - set(KINDS))
BUILT_FAST = [n for n in NAMES if keras_wrn.get_model_spec(n).params < 20_000_000]
BUILT_SLOW = sorted(set(NAMES) - set(BUILT_FAST))


def tiny_overrides(spec):
    """The smallest input each family takes, to keep the sweep fast."""
    size = 32 if spec.family == "imagenet" else 8
    return {"input_shape": default_input_shape(size), "num_classes": 3}


def test_registry_holds_the_papers_models():
    assert len(NAMES) == len(set(NAMES))
    for name in ("wrn-16-8", "wrn-28-10", "wrn-40-4", "wrn-28-10-dropout",
                 "wrn-50-2-bottleneck", "wrn-18-1.5-imagenet", "wrn-34-2-imagenet",
                 "wrn-34-10", "wrn-70-16-deepmind", "wrn-28-2-usb", "wrn-16-2"):
        assert name in NAMES
    assert keras_wrn.list_models("wrn-28-*", use="paper") == ["wrn-28-10", "wrn-28-12", "wrn-28-10-dropout", "wrn-28-2"]
    assert all(keras_wrn.get_model_spec(n).family == "imagenet" for n in keras_wrn.list_models(family="imagenet"))


def check_metadata(name):
    spec = keras_wrn.get_model_spec(name)
    model = keras_wrn.get_model(name)
    assert model.input_shape[1:3] == (spec.input_size, spec.input_size)
    assert model.output_shape == (None, spec.num_classes)
    assert keras_wrn.count_params(model) == spec.params
    assert keras_wrn.count_macs(model) == spec.macs
    assert spec.paper or name == "wrn-101-2-bottleneck" or "paper" not in spec.uses


@pytest.mark.parametrize("name", BUILT_FAST)
def test_metadata_matches_built_model(name):
    check_metadata(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT_SLOW)
def test_metadata_matches_built_model_large(name):
    check_metadata(name)


def round_trip_save_and_reload(name, tmp_path):
    """One tiny build: call, config round trip, then .keras save and load."""
    spec = keras_wrn.get_model_spec(name)
    model = keras_wrn.get_model(name, **tiny_overrides(spec))
    images = np.random.default_rng(0).normal(size=(2,) + model.input_shape[1:]).astype("float32")
    out = np.asarray(model(images, training=False))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)

    config = model.get_config()
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert [x.name for x in clone.layers] == [x.name for x in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(images, training=False)), out, rtol=1e-5, atol=1e-6)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == config
    np.testing.assert_array_equal(np.asarray(loaded(images, training=False)), out)


@pytest.mark.parametrize("name", KINDS)
def test_build_call_config_round_trip_and_keras_save_and_load(name, tmp_path):
    round_trip_save_and_reload(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_round_trip_and_keras_save_and_load_of_every_other_model(name, tmp_path):
    round_trip_save_and_reload(name, tmp_path)


def test_get_model_overrides():
    model = keras_wrn.get_model("wrn-28-10-dropout", num_classes=100, dropout_rate=0.4)
    assert model.output_shape == (None, 100)
    assert model.get_layer("group1_block1_dropout2").rate == 0.4
    assert keras_wrn.get_model_spec("wrn-28-10").paper_error("cifar100", "Table 5") == 19.25
