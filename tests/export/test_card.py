"""Model cards: what they state, that the figures are the measured ones, and
that one export folder holds one model."""

import json
import os

import numpy as np
import pytest


def test_card_states_the_model_and_the_measurements(tiny_export, tiny_keras, tiny_keras_probabilities):
    import keras

    from keras_wrn.models import count_macs, count_params
    from keras_wrn.training.evaluate import evaluate

    with open(os.path.join(tiny_export, "model_card.json")) as handle:
        card = json.load(handle)
    model = keras.saving.load_model(tiny_keras)
    assert card["params"] == count_params(model) and card["macs"] == count_macs(model)
    assert card["dataset"] == "digits" and card["class_names"] == [str(i) for i in range(10)]
    assert card["input"]["shape"] == [8, 8, 1]
    measured = evaluate(tiny_keras, dataset="digits")
    assert card["evaluation"]["test_error"] == pytest.approx(measured["test_error"])
    assert card["evaluation"]["command"].startswith("keras-wrn evaluate ")
    reference, _ = tiny_keras_probabilities
    np.testing.assert_allclose(card["keras_reference"]["probabilities"], reference[:16], atol=1e-6)
    assert sorted(card["artifacts"]) == ["1", "model.tflite", "model_dynamic.tflite", "model_float16.tflite",
                                         "model_int8.tflite"]
    for key, artifact in card["artifacts"].items():
        assert artifact["command"].startswith("keras-wrn export ")
        assert artifact["versions"]["tensorflow"] and artifact["versions"]["keras_wrn"]
        assert all(p["passed"] for p in artifact["parity"].values())
        assert artifact["num_test_examples"] == 450
    markdown = open(os.path.join(tiny_export, "MODEL_CARD.md")).read()
    assert f"{100 * measured['test_error']:.2f}%" in markdown
    assert all(f"`{key}`" in markdown for key in card["artifacts"])


def test_an_export_folder_holds_one_model(tiny_keras, tiny_export, tmp_path):
    import keras

    from keras_wrn import WideResNet
    from keras_wrn.export import ExportError, export_savedmodel

    other = WideResNet(depth=10, k=1, num_classes=10, input_shape=(8, 8, 1), name="other")
    path = str(tmp_path / "other.keras")
    other.save(path)
    before = sorted(os.listdir(tiny_export))
    with pytest.raises(ExportError, match="holds exports of .*Choose another --out"):
        export_savedmodel(path, tiny_export, dataset="digits", verbose=False)
    assert sorted(os.listdir(tiny_export)) == before
    assert keras.saving.load_model(tiny_keras).name != "other"


def test_cli_export_errors(tiny_keras, tmp_path):
    from click.testing import CliRunner

    from keras_wrn.cli import main

    def export(*args):
        return CliRunner().invoke(main, ["export", *args], catch_exceptions=False)

    result = export(tiny_keras, "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "needs --dataset" in result.output
    result = export(tiny_keras, "--dataset", "cifar10", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "(8, 8, 1) images" in result.output
    result = export(tiny_keras, "--dataset", "nope", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1 and "nope" in result.output
    result = export(tiny_keras, "--dataset", "digits", "--quantize", "int8")
    assert result.exit_code == 2 and "--format tflite only" in result.output
    assert not os.path.exists(tmp_path / "x")
