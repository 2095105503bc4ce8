"""SavedModel export: TF Serving's layout and signatures, exact parity with
the Keras model (also after reloading in a fresh process), versions that are
never overwritten, atomic writes, and REST requests as TF Serving documents
them."""

import base64
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.export import tf_serving_rest
from tests.helpers import digits_arrays

SAVED_MODEL_CLI = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable)) or shutil.which(
    "saved_model_cli")


def test_layout_and_exact_parity(tiny_export, tiny_keras_probabilities):
    import tensorflow as tf

    from keras_wrn.export.savedmodel import run_signature

    version = os.path.join(tiny_export, "1")
    assert os.path.exists(os.path.join(version, "saved_model.pb"))
    assert os.path.exists(os.path.join(version, "variables", "variables.index"))
    reference, labels = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    loaded = tf.saved_model.load(version)
    outputs = run_signature(loaded, "serving_uint8", images)
    np.testing.assert_allclose(outputs["probabilities"], reference, atol=1e-6)
    assert (outputs["top_class_ids"][:, 0] == reference.argmax(1)).all()
    np.testing.assert_allclose(outputs["top_probabilities"][:, 0], reference.max(1), atol=1e-6)
    assert [[n.decode() for n in row] for row in outputs["top_class_names"][:2]] == \
        [[str(i) for i in row] for row in outputs["top_class_ids"][:2]]
    assert (outputs["top_class_ids"][:, 0] != labels).mean() < 0.2  # a real classifier
    with open(os.path.join(version, "keras_wrn_export.json")) as handle:
        metadata = json.load(handle)
    assert metadata["export"]["parity"]["serving_default"]["max_abs_diff"] == 0.0


def test_weights_are_stored_once(tiny_export, tiny_keras):
    import keras

    model = keras.saving.load_model(tiny_keras)
    weight_bytes = sum(int(np.prod(w.shape)) * 4 for w in model.weights)
    data = os.path.join(tiny_export, "1", "variables", "variables.data-00000-of-00001")
    assert os.path.getsize(data) < 1.1 * weight_bytes + 4096


@pytest.mark.slow
def test_signatures_as_saved_model_cli_shows_them(tiny_export):
    if SAVED_MODEL_CLI is None:
        pytest.skip("saved_model_cli is not on PATH")
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", os.path.join(tiny_export, "1"), "--all"],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    signatures = {}
    for block in shown.stdout.split("signature_def[")[1:]:
        name = block.split("'")[1]
        tensors = re.findall(r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", block)
        signatures[name] = {(kind, tensor): (dtype, shape) for kind, tensor, dtype, shape in tensors}
    outputs = {("outputs", "probabilities"): ("DT_FLOAT", "(-1, 10)"),
               ("outputs", "top_class_ids"): ("DT_INT32", "(-1, 5)"),
               ("outputs", "top_probabilities"): ("DT_FLOAT", "(-1, 5)"),
               ("outputs", "top_class_names"): ("DT_STRING", "(-1, 5)")}
    assert signatures["serving_default"] == {("inputs", "images"): ("DT_FLOAT", "(-1, 8, 8, 1)"), **outputs}
    assert signatures["serving_uint8"] == {("inputs", "images"): ("DT_UINT8", "(-1, 8, 8, 1)"), **outputs}
    assert signatures["serving_bytes"] == {("inputs", "image_bytes"): ("DT_STRING", "(-1)"), **outputs}
    assert "Method name is: tensorflow/serving/predict" in shown.stdout


@pytest.mark.slow
def test_fresh_process_reload_gives_identical_outputs(tiny_export, tiny_keras_probabilities, tmp_path):
    reference, _ = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        "loaded = tf.saved_model.load(sys.argv[1])\n"
        "images = np.load(sys.argv[2])\n"
        "out = loaded.signatures['serving_default'](images=tf.constant(images.astype('float32')))\n"
        "np.save(sys.argv[3], out['probabilities'].numpy())\n"
    )
    subprocess.run([sys.executable, "-c", script, os.path.join(tiny_export, "1"), str(tmp_path / "images.npy"),
                    str(tmp_path / "out.npy")], check=True, timeout=300,
                   env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), reference, atol=1e-6)


def test_rest_requests_as_tf_serving_documents_them(tiny_export, tiny_keras_probabilities):
    import tensorflow as tf

    reference, _ = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    loaded = tf.saved_model.load(os.path.join(tiny_export, "1"))

    # Row format, default signature, JSON integers for float pixels.
    body = json.dumps({"instances": images[:3].tolist()})
    response = tf_serving_rest.predict(loaded, body)
    assert "error" not in response, response
    assert [p["top_class_ids"][0] for p in response["predictions"]] == reference[:3].argmax(1).tolist()
    np.testing.assert_allclose([p["probabilities"] for p in response["predictions"]], reference[:3], atol=1e-6)
    assert response["predictions"][0]["top_class_names"][0] == str(reference[0].argmax())

    # Columnar format on the uint8 signature.
    body = json.dumps({"signature_name": "serving_uint8", "inputs": images[:2].tolist()})
    response = tf_serving_rest.predict(loaded, body)
    np.testing.assert_allclose(response["outputs"]["probabilities"], reference[:2], atol=1e-6)

    # Encoded images as {"b64": ...}: PNG (lossless, so exact) and a resized RGB JPEG.
    png = [tf.io.encode_png(image).numpy() for image in images[:2]]
    large = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(images[2])), [40, 40], method="nearest")
    jpeg = tf.io.encode_jpeg(tf.cast(large, tf.uint8), quality=100).numpy()
    body = json.dumps({"signature_name": "serving_bytes",
                       "instances": [{"b64": base64.b64encode(b).decode()} for b in [*png, jpeg]]})
    response = tf_serving_rest.predict(loaded, body)
    assert "error" not in response, response
    np.testing.assert_allclose([p["probabilities"] for p in response["predictions"][:2]], reference[:2], atol=1e-6)
    assert response["predictions"][2]["top_class_ids"][0] == reference[2].argmax()


def test_bad_requests_give_errors(tiny_export):
    import tensorflow as tf

    loaded = tf.saved_model.load(os.path.join(tiny_export, "1"))
    signatures = loaded.signatures
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"serving_default takes images of shape \(N, 8, 8, 1\)"):
        signatures["serving_default"](images=tf.zeros([1, 32, 32, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected to be a uint8 tensor but is a float"):
        signatures["serving_uint8"](images=tf.zeros([1, 8, 8, 1], tf.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Unknown image file format"):
        signatures["serving_bytes"](image_bytes=tf.constant([b"not an image"]))
    truncated = tf.io.encode_png(tf.zeros([8, 8, 1], tf.uint8)).numpy()[:20]
    with pytest.raises(tf.errors.InvalidArgumentError):
        signatures["serving_bytes"](image_bytes=tf.constant([truncated]))
    # The model still serves after bad requests.
    assert signatures["serving_uint8"](images=tf.zeros([2, 8, 8, 1], tf.uint8))["probabilities"].shape == (2, 10)
    body = json.dumps({"instances": [[[0.0] * 3] * 3]})
    assert "error" in tf_serving_rest.predict(loaded, body)
    body = json.dumps({"signature_name": "serving_bytes", "instances": [{"b64": base64.b64encode(b"junk").decode()}]})
    assert "error" in tf_serving_rest.predict(loaded, body)


def test_versions_increase_and_are_never_overwritten(tiny_keras, tmp_path):
    from keras_wrn.export import ExportError, export_savedmodel, load_source

    out = str(tmp_path / "model")
    source = load_source(tiny_keras, dataset="digits")
    first = export_savedmodel(tiny_keras, out, source=source, max_examples=32, verbose=False)
    second = export_savedmodel(tiny_keras, out, source=source, max_examples=32, verbose=False)
    assert (first["version"], second["version"]) == (1, 2)
    before = open(os.path.join(out, "1", "saved_model.pb"), "rb").read()
    with pytest.raises(ExportError, match="never overwritten.*version 3"):
        export_savedmodel(tiny_keras, out, source=source, version=1, verbose=False)
    assert open(os.path.join(out, "1", "saved_model.pb"), "rb").read() == before
    assert export_savedmodel(tiny_keras, out, source=source, version=7, max_examples=8, verbose=False)["version"] == 7
    assert sorted(os.listdir(out)) == ["1", "2", "7", "MODEL_CARD.md", "model_card.json"]


def test_a_failed_verification_writes_nothing(tiny_keras, tmp_path, monkeypatch):
    from keras_wrn.export import ExportVerificationError, export_savedmodel, verify

    out = tmp_path / "model"
    monkeypatch.setitem(verify.TOLERANCES, "savedmodel", (-1.0, 1.0))  # nothing can pass
    with pytest.raises(ExportVerificationError, match="not written.*max \\|p - p_keras\\|"):
        export_savedmodel(tiny_keras, str(out), dataset="digits", max_examples=16, verbose=False)
    assert os.listdir(out) == []  # no version, no temporary folder, no card


def test_a_crash_while_writing_leaves_no_version(tiny_keras, tmp_path, monkeypatch):
    from keras_wrn.export import export_savedmodel, savedmodel

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(savedmodel, "verify_savedmodel", crash)
    with pytest.raises(KeyboardInterrupt):
        export_savedmodel(tiny_keras, str(tmp_path / "model"), dataset="digits", max_examples=8, verbose=False)
    assert os.listdir(tmp_path / "model") == []


def test_a_full_disk_is_one_line_and_publishes_nothing(tiny_keras, tiny_export, full_disk):
    """An export onto a full file system (a 2 MB tmpfs that already holds
    version 1 and a card, then filled): TensorFlow's SaveV2 fails; the
    command prints one line worded for an export, and version 1, the card
    and the folder are as they were, with no temporary left."""
    import shutil

    from tests.helpers import fill, invoke

    out = full_disk / "model"
    out.mkdir()
    for name in ("1", "model_card.json", "MODEL_CARD.md"):
        (shutil.copytree if name == "1" else shutil.copy)(os.path.join(tiny_export, name), out / name)
    before = sorted(os.listdir(out))
    fill(full_disk)
    result = invoke("export", tiny_keras, "--dataset", "digits", "--out", out, "--max-examples", "16")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: Could not write {out}/2: No space left on device."), result.output
    assert "nothing new was published" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(os.listdir(out)) == before


def test_a_model_that_normalises_its_pixels_is_not_normalised_twice(tiny_keras, tiny_keras_probabilities, tmp_path):
    """A model built with `include_preprocessing` (as one with weights from
    the table is) takes pixels 0-255: evaluate and export feed them as they are."""
    import keras

    from keras_wrn import WideResNet
    from keras_wrn.export import load_source
    from keras_wrn.export.source import probabilities
    from keras_wrn.training.evaluate import evaluate

    trained = keras.saving.load_model(tiny_keras)
    model = WideResNet(depth=10, k=2, num_classes=10, input_shape=(8, 8, 1), classifier_activation=None,
                       include_preprocessing={"mean": [0.0], "std": [255.0]})
    model.set_weights(trained.get_weights())
    path = str(tmp_path / "with-preprocessing.keras")
    model.save(path)
    source = load_source(path, dataset="digits")
    assert source.mean == (0.0,) and source.std == (1.0,)
    images, _ = digits_arrays("test")
    expected, _ = tiny_keras_probabilities
    np.testing.assert_allclose(probabilities(source.serving_model(), images), expected, atol=1e-5)
    assert evaluate(path, dataset="digits")["test_error"] == evaluate(tiny_keras, dataset="digits")["test_error"]
