"""The README's main job, end to end through the installed `keras-wrn`
command: train on the embedded digits, evaluate the run folder, export it
and predict with the exports."""

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # the whole README job: minutes

SCRIPT = shutil.which("keras-wrn", path=os.path.dirname(sys.executable)) or shutil.which("keras-wrn")
README_PROMISE_SECONDS = 5 * 60  # README: "about 2 minutes"; generous for a busy CI machine


@pytest.mark.skipif(SCRIPT is None, reason="keras-wrn is not installed (pip install -e .)")
def test_default_training_run_learns_the_digits(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run_dir = str(tmp_path / "digits")
    start = time.monotonic()
    trained = subprocess.run([SCRIPT, "train", "--run-dir", run_dir], capture_output=True,
                             text=True, env=env, timeout=900)
    elapsed = time.monotonic() - start
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert elapsed < README_PROMISE_SECONDS, f"took {elapsed:.0f}s"
    evaluated = subprocess.run([SCRIPT, "evaluate", run_dir, "--json"], capture_output=True,
                               text=True, env=env, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout)
    assert result["dataset"] == "digits" and result["num_examples"] == 450
    assert 1 - result["test_error"] >= 0.95
    # The trainer's own last test error is the same measurement.
    with open(os.path.join(run_dir, "metrics.jsonl")) as handle:
        last = json.loads(handle.read().splitlines()[-1])
    assert last["test_error"] == pytest.approx(result["test_error"], abs=1e-9)

    # Deploy it: a verified SavedModel and int8 TFLite file, then predictions
    # on image files through both, as a user would run them.
    import tensorflow as tf

    from keras_wrn import data

    out = str(tmp_path / "exported")
    for extra in ([], ["--format", "tflite", "--quantize", "int8"]):
        exported = subprocess.run([SCRIPT, "export", run_dir, "--out", out, *extra], capture_output=True,
                                  text=True, env=env, timeout=600)
        assert exported.returncode == 0, exported.stderr[-3000:]
    with open(os.path.join(out, "model_card.json")) as handle:
        card = json.load(handle)
    assert card["evaluation"]["test_error"] == pytest.approx(result["test_error"], abs=1e-9)
    assert card["artifacts"]["1"]["test_error"] == pytest.approx(result["test_error"], abs=1e-9)
    split = data.load_split(data.get_dataset_spec("digits"), "test")
    files, labels = [], []
    for i, (image, label) in enumerate(split.source.take(20).as_numpy_iterator()):
        files.append(str(tmp_path / f"{i}.png"))
        tf.io.write_file(files[-1], tf.io.encode_png(image))
        labels.append(int(label))
    for model in (out, os.path.join(out, "model_int8.tflite")):
        predicted = subprocess.run([SCRIPT, "predict", model, *files, "--json", "--top-k", "1"],
                                   capture_output=True, text=True, env=env, timeout=600)
        assert predicted.returncode == 0, predicted.stderr[-3000:]
        top1 = [r["predictions"][0]["class_id"] for r in json.loads(predicted.stdout)["results"]]
        assert np.mean(np.array(top1) == labels) >= 0.9
