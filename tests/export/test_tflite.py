"""TFLite export: every quantisation runs in LiteRT within its tolerance of
the Keras model (also in a fresh process); int8 is integer end to end; the
verification catches a conversion route known to output NaN."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import digits_arrays

FILES = {"none": "model.tflite", "float16": "model_float16.tflite", "dynamic": "model_dynamic.tflite",
         "int8": "model_int8.tflite"}


@pytest.mark.parametrize("quantize", list(FILES))
def test_each_variant_within_tolerance(tiny_export, tiny_keras_probabilities, quantize):
    from keras_wrn.export import TOLERANCES, TFLiteModel
    from keras_wrn.export.tflite import parity_kind

    reference, labels = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    outputs = TFLiteModel(os.path.join(tiny_export, FILES[quantize]))(images)
    max_diff, min_agreement = TOLERANCES[parity_kind(quantize)]
    assert np.abs(outputs - reference).max() <= max_diff
    assert (outputs.argmax(1) == reference.argmax(1)).mean() >= min_agreement
    with open(os.path.join(tiny_export, "model_card.json")) as handle:
        record = json.load(handle)["artifacts"][FILES[quantize]]
    assert record["quantize"] == quantize and record["parity"]["tflite"]["passed"]
    assert record["test_error"] == pytest.approx((outputs.argmax(1) != labels).mean(), abs=1.5 / len(labels))


def test_sizes_and_integer_io(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    sizes = {q: os.path.getsize(os.path.join(tiny_export, f)) for q, f in FILES.items()}
    assert sizes["float16"] < 0.6 * sizes["none"]
    assert sizes["dynamic"] < 0.4 * sizes["none"] and sizes["int8"] < 0.4 * sizes["none"]
    interpreter = Interpreter(model_path=os.path.join(tiny_export, FILES["int8"]))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    assert interpreter.get_output_details()[0]["dtype"] == np.uint8
    interpreter = Interpreter(model_path=os.path.join(tiny_export, FILES["none"]))
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, 8, 8, 1]


def test_fresh_process_litert_only(tiny_export, tiny_keras_probabilities, tmp_path):
    """A deployment process: the LiteRT interpreter and numpy, no TensorFlow."""
    reference, _ = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    np.save(tmp_path / "images.npy", images[:64])
    script = (
        "import sys, numpy as np\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "interpreter = Interpreter(model_path=sys.argv[1])\n"
        "images = np.load(sys.argv[2]).astype('float32')\n"
        "interpreter.resize_tensor_input(interpreter.get_input_details()[0]['index'], images.shape)\n"
        "interpreter.allocate_tensors()\n"
        "interpreter.set_tensor(interpreter.get_input_details()[0]['index'], images)\n"
        "interpreter.invoke()\n"
        "np.save(sys.argv[3], interpreter.get_tensor(interpreter.get_output_details()[0]['index']))\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script, os.path.join(tiny_export, FILES["none"]),
                    str(tmp_path / "images.npy"), str(tmp_path / "out.npy")], check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), reference[:64], atol=1e-4)


def test_verification_catches_the_nan_route(tiny_keras, tmp_path, tiny_keras_probabilities):
    """TFLite converted from a plain tf.Module SavedModel outputs NaN without
    any error (ENVIRONMENT.md): the export check must refuse such a file."""
    import keras
    import tensorflow as tf

    from keras_wrn.export import ExportVerificationError, TFLiteModel
    from keras_wrn.export.verify import check, compare

    model = keras.saving.load_model(tiny_keras)
    module = tf.Module()
    module.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)], autograph=False)
    def serve(images):
        return {"probabilities": tf.nn.softmax(model(images / 255.0, training=False))}

    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "module"), signatures={"serving_default": serve})
    (tmp_path / "module.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "module")).convert())
    reference, labels = tiny_keras_probabilities
    images, _ = digits_arrays("test")
    outputs = TFLiteModel(str(tmp_path / "module.tflite"))(images[:32])
    parity = compare("float32", reference[:32], outputs, labels[:32])
    if np.isfinite(outputs).all():
        pytest.skip("this TensorFlow converts the tf.Module route correctly; nothing to catch")
    with pytest.raises(ExportVerificationError, match="nan"):
        check(parity)


def test_a_failed_verification_keeps_the_existing_file(tiny_keras, tmp_path, monkeypatch):
    from keras_wrn.export import ExportError, ExportVerificationError, export_tflite, load_source, verify

    out = str(tmp_path / "model")
    source = load_source(tiny_keras, dataset="digits")
    export_tflite(tiny_keras, out, quantize="dynamic", source=source, max_examples=32, verbose=False)
    path = os.path.join(out, "model_dynamic.tflite")
    before = open(path, "rb").read()
    with pytest.raises(ExportError, match="already exists; pass --overwrite"):
        export_tflite(tiny_keras, out, quantize="dynamic", source=source, verbose=False)
    monkeypatch.setitem(verify.TOLERANCES, "dynamic", (0.0, 1.0))
    with pytest.raises(ExportVerificationError, match="not written"):
        export_tflite(tiny_keras, out, quantize="dynamic", source=source, overwrite=True, max_examples=32,
                      verbose=False)
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(out)) == ["MODEL_CARD.md", "model_card.json", "model_dynamic.tflite"]


def test_tflite_model_rejects_wrong_shapes_and_files(tiny_export, tmp_path):
    from keras_wrn.export import TFLiteModel

    with pytest.raises(ValueError, match=r"shape \(N, 8, 8, 1\); received \(2, 32, 32, 3\)"):
        TFLiteModel(os.path.join(tiny_export, FILES["none"]))(np.zeros((2, 32, 32, 3)))
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="not a readable TFLite model"):
        TFLiteModel(str(tmp_path / "junk.tflite"))


@pytest.mark.slow
def test_a_killed_export_leaves_debris_the_same_command_removes(tiny_keras, tmp_path):
    import signal
    import subprocess

    from tests.helpers import CLI, ENV, kill_when

    out = tmp_path / "exported"
    command = [*CLI, "export", tiny_keras, "--dataset", "digits", "--format", "tflite", "--out", str(out),
               "--max-examples", "32"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    killed = kill_when(process, lambda: out.is_dir() and any(name.startswith(".tmp-") for name in os.listdir(out)),
                       timeout=120, poll=0.05)
    assert killed and process.returncode == -signal.SIGKILL, "the export ended before its temporary file was seen"
    assert [name for name in os.listdir(out) if name.startswith(".tmp-")]
    finished = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["MODEL_CARD.md", "model.tflite", "model_card.json"]
