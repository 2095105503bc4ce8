"""keras-wrn's own trained weights by tag (`weights="cifar10"`)."""

import dataclasses
import os

import numpy as np
import pytest

import keras_wrn
from keras_wrn.models import trained
from keras_wrn.models.common import read_layer_weights

ENTRY = trained.TRAINED[("WRN-16-8", "cifar10")]


def test_cifar10_weights_load_by_tag_and_match_their_file():
    path = ENTRY.locate()
    assert os.path.isfile(path), "the trained weights are committed in exported/"
    model = keras_wrn.get_model("wrn-16-8", weights="cifar10")
    stored = read_layer_weights(path)
    assert set(stored) == {layer.name for layer in model.layers if layer.weights}
    for layer in model.layers:
        for array, variable in zip(stored.get(layer.name, []), layer.weights):
            np.testing.assert_array_equal(np.asarray(variable), array.astype("float32"))
    # A trained network, not an initialisation: the classifier separates the classes.
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    from keras_wrn import data

    normalise = data.preprocessor(*data.get_dataset_spec("cifar10").normalization())
    probabilities = np.asarray(model(normalise(images)))
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    assert 0.0 < ENTRY.test_error < 0.1


def _entry_at(monkeypatch, root):
    monkeypatch.setitem(trained.TRAINED, ("WRN-16-8", "cifar10"), ENTRY)
    monkeypatch.setattr(trained.TrainedWeights, "locate", lambda self, r=None: os.path.join(root, self.path))


def test_missing_weights_say_where_they_live(monkeypatch, tmp_path):
    _entry_at(monkeypatch, str(tmp_path))
    with pytest.raises(trained.TrainedWeightsError, match="not in the installed package.*weights='<path"):
        keras_wrn.get_model("wrn-16-8", weights="cifar10")


def test_damaged_weights_are_refused(monkeypatch, tmp_path):
    _entry_at(monkeypatch, str(tmp_path))
    copy = tmp_path / ENTRY.path
    copy.parent.mkdir(parents=True)
    copy.write_bytes(b"PK\x03\x04 not the weights")
    with pytest.raises(trained.TrainedWeightsError, match="does not match the recorded SHA-256"):
        keras_wrn.get_model("wrn-16-8", weights="cifar10")


def test_other_models_list_the_trained_tags():
    from keras_wrn.convert.pretrained import PretrainedWeightsError

    with pytest.raises(PretrainedWeightsError, match=r"trained by keras-wrn: WRN-16-8: \['cifar10'\]"):
        keras_wrn.get_model("wrn-28-10", weights="cifar10")


def test_a_record_is_complete_and_its_file_small():
    for (label, tag), entry in trained.TRAINED.items():
        assert len(entry.sha256) == 64 and entry.path.endswith(".npz") and dataclasses.asdict(entry)["card"]
        assert os.path.isfile(entry.locate().replace(entry.path, entry.card))
        assert os.path.getsize(entry.locate()) < 20e6  # the repository keeps files under 20 MB


def test_compressed_layer_weights_round_trip(tmp_path):
    from keras_wrn.models.common import save_layer_weights

    weights = {"conv": [np.zeros((64, 64), "float32"), np.arange(3, dtype="float16")]}
    save_layer_weights(str(tmp_path / "plain.npz"), weights)
    save_layer_weights(str(tmp_path / "small.npz"), weights, compressed=True)
    assert (tmp_path / "small.npz").stat().st_size < (tmp_path / "plain.npz").stat().st_size / 4
    for a, b in zip(read_layer_weights(str(tmp_path / "small.npz"))["conv"], weights["conv"]):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
