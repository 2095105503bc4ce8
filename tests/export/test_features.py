"""A feature extractor as a SavedModel with one output per tap, verified
tap by tap before it is renamed into place."""

import json
import os

import pytest

import keras_wrn
from keras_wrn.export.features import export_features
from keras_wrn.export.source import ExportError


def test_extractor_exports_a_savedmodel_with_one_output_per_tap(tmp_path):
    import tensorflow as tf

    model = keras_wrn.get_model("wrn-16-1", input_shape=(16, 16, 3), include_preprocessing="cifar10")
    extractor = keras_wrn.feature_extractor(model, taps=["group1", "group3_preact", "pooled"])
    record = export_features(extractor, tmp_path / "served", verbose=False)
    assert record["path"] == str(tmp_path / "served" / "1")
    assert set(record["parity"]) == {"serving_default", "serving_uint8"}
    loaded = tf.saved_model.load(record["path"])
    outputs = loaded.signatures["serving_uint8"](images=tf.zeros((2, 16, 16, 3), tf.uint8))
    assert {tap: tuple(value.shape) for tap, value in outputs.items()} == \
        {"group1": (2, 16, 16, 16), "group3_preact": (2, 4, 4, 64), "pooled": (2, 64)}
    with open(os.path.join(record["path"], "keras_wrn_export.json")) as handle:
        assert json.load(handle)["taps"]["pooled"] == [-1, 64]
    # A second export takes the next version; a plain classifier is refused.
    assert export_features(extractor, tmp_path / "served", verbose=False)["version"] == 2
    with pytest.raises(ExportError, match="output is a dict of named features"):
        export_features(model, tmp_path / "other", verbose=False)
    assert not (tmp_path / "other").exists()

@pytest.mark.slow

def test_a_full_disk_is_one_error_and_keeps_the_earlier_version(full_disk):
    """Onto a 2 MB tmpfs holding version 1, then filled: one error worded
    for an export, version 1 unchanged, no temporary left."""
    from keras_wrn.errors import FileWriteError
    from tests.helpers import fill

    model = keras_wrn.WideResNet(10, 1, input_shape=(8, 8, 3))
    extractor = keras_wrn.feature_extractor(model, taps=["group3"])
    out = full_disk / "served"
    export_features(extractor, out, verbose=False)
    before = sorted(os.listdir(out)), sorted(os.listdir(out / "1"))
    fill(full_disk)
    with pytest.raises(FileWriteError, match=rf"Could not write {out}/2: No space left on device.*nothing new was "
                                             r"published"):
        export_features(extractor, out, verbose=False)
    assert (sorted(os.listdir(out)), sorted(os.listdir(out / "1"))) == before
