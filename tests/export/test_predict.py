"""`keras-wrn predict` with every model form, and its errors."""

import json
import os

import pytest
from click.testing import CliRunner

from keras_wrn.cli import main
from tests.helpers import digits_arrays


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    """Six digits test images as PNG files, and one as a larger RGB JPEG."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("images")
    images, labels = digits_arrays("test")
    paths = []
    for i in range(6):
        path = folder / f"{i}.png"
        path.write_bytes(tf.io.encode_png(images[i]).numpy())
        paths.append(str(path))
    large = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(images[6])), [32, 32], method="nearest")
    (folder / "6.jpg").write_bytes(tf.io.encode_jpeg(tf.cast(large, tf.uint8), quality=100).numpy())
    (folder / "junk.png").write_bytes(b"\x89PNG but not really")
    return [*paths, str(folder / "6.jpg")], str(folder / "junk.png")


def predict(*args):
    result = CliRunner().invoke(main, ["predict", *args], catch_exceptions=False)
    return result


@pytest.mark.parametrize("form", ["keras", "savedmodel", "savedmodel-version", "tflite", "tflite-int8"])
def test_every_form_predicts_the_same_classes(form, tiny_keras, tiny_export, tiny_keras_probabilities, image_files):
    paths, _ = image_files
    model = {"keras": tiny_keras, "savedmodel": tiny_export, "savedmodel-version": os.path.join(tiny_export, "1"),
             "tflite": os.path.join(tiny_export, "model.tflite"),
             "tflite-int8": os.path.join(tiny_export, "model_int8.tflite")}[form]
    extra = ["--dataset", "digits"] if form == "keras" else []
    result = predict(model, *paths, "--top-k", "3", "--json", *extra)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["format"] == form.split("-")[0]
    reference, _ = tiny_keras_probabilities
    top1 = [r["predictions"][0]["class_id"] for r in payload["results"]]
    assert top1[:6] == reference[:6].argmax(1).tolist()
    assert top1[6] == reference[6].argmax()  # the resized RGB JPEG
    first = payload["results"][0]["predictions"]
    assert len(first) == 3 and first[0]["class_name"] == str(first[0]["class_id"])
    assert first[0]["probability"] == pytest.approx(reference[0].max(), abs=0.1)
    assert first[0]["probability"] >= first[1]["probability"] >= first[2]["probability"]


def test_table_output(tiny_export, image_files):
    paths, _ = image_files
    result = predict(tiny_export, paths[0])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["image", "rank", "class", "name", "probability"]
    assert [line.split()[-4] for line in lines[-5:]] == ["1", "2", "3", "4", "5"]


def test_errors_name_the_problem(tiny_keras, tiny_export, image_files, tmp_path):
    paths, junk = image_files
    result = predict(tiny_export, junk)
    assert result.exit_code == 1 and "junk.png' is not an image TensorFlow can decode" in result.output
    result = predict(os.path.join(tiny_export, "model.tflite"), junk)
    assert result.exit_code == 1 and "is not an image" in result.output
    result = predict(tiny_keras, paths[0])
    assert result.exit_code == 1 and "needs --dataset" in result.output
    result = predict(str(tmp_path), paths[0])
    assert result.exit_code == 1 and "Cannot predict with" in result.output


def test_a_damaged_or_incomplete_export_is_one_line(tiny_export, image_files, tmp_path):
    """A SavedModel copied without its variables/ (or one of their files),
    a damaged saved_model.pb and a truncated .tflite: each is named, with
    what to do, in one line."""
    import shutil

    paths, _ = image_files
    broken = tmp_path / "model"
    shutil.copytree(tiny_export, broken)
    version = broken / "1"
    (version / "variables" / "variables.index").unlink()
    result = predict(str(broken), paths[0])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"The SavedModel {version} is incomplete: variables/variables.index is missing." in result.output
    shutil.rmtree(version / "variables")
    result = predict(str(broken), paths[0])
    assert f"The SavedModel {version} is incomplete: variables/ is missing." in result.output
    shutil.copytree(os.path.join(tiny_export, "1", "variables"), version / "variables")
    pb = (version / "saved_model.pb").read_bytes()
    (version / "saved_model.pb").write_bytes(pb[:len(pb) // 3])
    result = predict(str(broken), paths[0])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert f"Cannot load the SavedModel {version}: it is damaged" in result.output
    tflite = broken / "model.tflite"
    tflite.write_bytes(tflite.read_bytes()[:5000])
    result = predict(str(tflite), paths[0])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "is not a readable TFLite model" in result.output and "export it again" in result.output
