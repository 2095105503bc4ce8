"""The weights table: keras-wrn's own trained weights and the published
checkpoints by tag, their records, and the preprocessing that travels with
them (`include_preprocessing`)."""

import os

import keras
import numpy as np
import pytest

import keras_wrn
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import registry, weights
from keras_wrn.models.weights_io import read_layer_weights, save_layer_weights

ENTRY = weights.get_weights("wrn-16-8", "cifar10")
EXACT_PIXELS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                            "cifar10-test-exact-1017.npz")


def test_cifar10_weights_load_by_tag_match_their_file_and_take_pixels():
    model = keras_wrn.get_model("wrn-16-8", weights="cifar10")
    stored = read_layer_weights(ENTRY.local_path())
    assert set(stored) == {layer.name for layer in model.layers if layer.weights}
    for layer in model.layers:
        for array, variable in zip(stored.get(layer.name, []), layer.weights):
            np.testing.assert_array_equal(np.asarray(variable), array.astype("float32"))
    # The model normalises pixels 0-255 itself, with the statistics of its training data.
    assert model.include_preprocessing == {"mean": list(weights.CIFAR_MEAN), "std": list(weights.CIFAR_STD)}
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    bare = keras_wrn.get_model("wrn-16-8", weights="cifar10", include_preprocessing=False)
    normalised = (pixels - np.array(weights.CIFAR_MEAN)) / np.array(weights.CIFAR_STD)
    np.testing.assert_allclose(np.asarray(model(pixels)), np.asarray(bare(normalised.astype("float32"))),
                               rtol=1e-5, atol=1e-6)


def test_preprocessing_round_trips_through_a_keras_file(tmp_path):
    model = keras_wrn.WideResNet(10, 1, include_preprocessing={"mean": [1.0, 2.0, 3.0], "std": [2.0, 2.0, 4.0]})
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.include_preprocessing == {"mean": [1.0, 2.0, 3.0], "std": [2.0, 2.0, 4.0]}
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(pixels)), np.asarray(model(pixels)), rtol=1e-6)
    # The preprocessing layer holds no weights: weights saved without it load into a model with it.
    bare = keras_wrn.WideResNet(10, 1)
    bare.save_weights(str(tmp_path / "bare.weights.h5"))
    with_preprocessing = keras_wrn.WideResNet(10, 1, weights=str(tmp_path / "bare.weights.h5"),
                                              include_preprocessing={"mean": [0, 0, 0], "std": [1, 1, 1]})
    np.testing.assert_allclose(np.asarray(with_preprocessing(pixels)), np.asarray(bare(pixels)), rtol=1e-6)


def test_include_preprocessing_is_checked():
    with pytest.raises(InvalidArgumentError, match="include_preprocessing=True takes the statistics of weights"):
        keras_wrn.WideResNet(10, 1, include_preprocessing=True)
    with pytest.raises(InvalidArgumentError, match=r"must be True, False or \{'mean'"):
        keras_wrn.WideResNet(10, 1, include_preprocessing={"mean": [0, 0, 0]})
    with pytest.raises(InvalidArgumentError, match="one mean and one positive std per channel"):
        keras_wrn.WideResNet(10, 1, include_preprocessing={"mean": [0, 0, 0], "std": [1, 0, 1]})
    assert keras_wrn.WideResNet(10, 1).include_preprocessing is False


def test_missing_weights_say_where_they_live(tmp_path):
    with pytest.raises(weights.WeightsFileError, match="not in the installed package.*weights='<path"):
        ENTRY.local_path(root=str(tmp_path))


def test_damaged_weights_are_refused(monkeypatch, tmp_path):
    copy = tmp_path / ENTRY.source
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PK\x03\x04 not the weights")
    monkeypatch.setattr(weights, "REPOSITORY_ROOT", str(tmp_path))
    with pytest.raises(weights.WeightsFileError, match="does not match the recorded SHA-256"):
        keras_wrn.get_model("wrn-16-8", weights="cifar10")


def test_other_models_list_every_models_tags():
    with pytest.raises(weights.UnknownWeightsError, match=r"No weights 'cifar10' for wrn-28-10\. "
                                                          r"Weights by model: wrn-16-8: cifar10;"):
        keras_wrn.get_model("wrn-28-10", weights="cifar10")


def test_every_record_is_complete():
    assert [(e.model, e.tag) for e in weights.list_weights()][:2] == [("wrn-16-8", "cifar10"),
                                                                     ("wrn-50-2-bottleneck", "imagenet")]
    for entry in weights.list_weights():
        spec = registry.get_model_spec(entry.model)  # every record names a registered model
        assert entry.num_classes == spec.num_classes == len(entry.class_names)
        assert entry.input_size == spec.input_size and entry.metrics and entry.description and entry.card
        assert entry.preprocessing.mean and len(entry.preprocessing.std) == 3
        if entry.is_url:
            assert len(entry.sha256) == 8 and entry.filename.split("-")[-1].startswith(entry.sha256)
        else:
            assert len(entry.sha256) == 64 and entry.source.endswith(".npz")
            assert os.path.isfile(os.path.join(weights.REPOSITORY_ROOT, entry.card))
            assert os.path.getsize(entry.local_path()) < 20e6  # the repository keeps files under 20 MB
    assert keras_wrn.list_models(pretrained=True) == ["wrn-16-8", "wrn-50-2-bottleneck", "wrn-101-2-bottleneck"]
    assert [w["tag"] for w in registry.get_model_spec("wrn-16-8").to_dict()["weights"]] == ["cifar10"]


def test_compressed_layer_weights_round_trip(tmp_path):
    layer_weights = {"conv": [np.zeros((64, 64), "float32"), np.arange(3, dtype="float16")]}
    save_layer_weights(str(tmp_path / "plain.npz"), layer_weights)
    save_layer_weights(str(tmp_path / "small.npz"), layer_weights, compressed=True)
    assert (tmp_path / "small.npz").stat().st_size < (tmp_path / "plain.npz").stat().st_size / 4
    for a, b in zip(read_layer_weights(str(tmp_path / "small.npz"))["conv"], layer_weights["conv"]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isfile(EXACT_PIXELS), reason="needs ../shared/data/cifar10-test-exact-1017.npz")
def test_published_wrn_16_8_on_the_original_cifar10_pixels():
    """Through the public API alone: raw uint8 test images of the original
    CIFAR-10 into the model built by tag."""
    data = np.load(EXACT_PIXELS)
    model = keras_wrn.get_model("wrn-16-8", weights="cifar10")
    accuracy = float((model.predict(data["images"], batch_size=256, verbose=0).argmax(1) == data["labels"]).mean())
    assert accuracy == pytest.approx(ENTRY.metrics["cifar10_exact_1017_accuracy"], abs=0.0005)
    assert [ENTRY.class_names[i] for i in data["labels"][:3]] == ["cat", "ship", "ship"]
