"""Every model committed in exported/ still loads and still performs as its
card says: its accuracy re-measured on its test data, and its outputs
compared with the Keras model's outputs stored in the card."""

import glob
import json
import os

import numpy as np
import pytest

from keras_wrn.export.verify import TOLERANCES

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "exported")
CARDS = sorted(glob.glob(os.path.join(ROOT, "*", "model_card.json")))
ARTIFACTS = []
for _path in CARDS:
    with open(_path) as _handle:
        ARTIFACTS += [(os.path.dirname(_path), key) for key in json.load(_handle)["artifacts"]]


def test_the_default_model_is_exported():
    keys = {(os.path.basename(folder), key) for folder, key in ARTIFACTS}
    assert ("digits-wrn-16-4", "1") in keys
    assert any(name == "digits-wrn-16-4" and key.endswith(".tflite") for name, key in keys)


@pytest.mark.parametrize("folder, key", ARTIFACTS, ids=[f"{os.path.basename(f)}/{k}" for f, k in ARTIFACTS])
def test_artifact_matches_its_card(folder, key):
    from keras_wrn import data
    from keras_wrn.export import TFLiteModel
    from keras_wrn.export.savedmodel import run_signature
    from keras_wrn.export.source import load_test_arrays

    with open(os.path.join(folder, "model_card.json")) as handle:
        card = json.load(handle)
    artifact = card["artifacts"][key]
    spec = data.get_dataset_spec(card["dataset"])
    try:
        images, labels, _ = load_test_arrays(spec, max_examples=artifact["num_test_examples"])
    except data.DataNotFoundError as error:
        pytest.skip(f"the test data of {card['dataset']} is not on this machine: {error}")
    if artifact["format"] == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(os.path.join(folder, key))
        probabilities = run_signature(loaded, "serving_uint8", images)["probabilities"]
        kind = "savedmodel"
    else:
        probabilities = TFLiteModel(os.path.join(folder, key))(images)
        kind = "float32" if artifact["quantize"] == "none" else artifact["quantize"]
    errors = int((probabilities.argmax(1) != labels).sum())
    assert errors == pytest.approx(artifact["test_error"] * len(labels), abs=1 if kind != "savedmodel" else 0)
    reference = np.array(card["keras_reference"]["probabilities"])
    max_diff, _ = TOLERANCES[kind]
    assert np.abs(probabilities[:len(reference)] - reference).max() <= max_diff
    assert (probabilities[:len(reference)].argmax(1) == reference.argmax(1)).all()
    # The Keras model's own test error, as `keras-wrn evaluate` measured it,
    # is the one this artifact reproduces within its tolerance.
    assert abs(artifact["test_error"] - card["evaluation"]["test_error"]) <= 0.01
