"""The examples run as a user would run them."""

import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # each example trains or builds for real

ROOT = pathlib.Path(__file__).parents[1]
# Examples that need a dataset on disk have their own test below.
NEEDS_DATA = {"train_cifar10_in_memory.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in NEEDS_DATA)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


def test_cifar10_in_memory_example_makes_a_run_folder_keras_wrn_reads(tmp_path):
    """The GPU route (JAX, Keras fit from arrays) on a made-up CIFAR-10-shaped
    JPEG archive; its run folder is then evaluated by `keras-wrn evaluate`
    (TensorFlow) exactly as the published weights were."""
    import json
    import tarfile

    import numpy as np
    from PIL import Image

    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar10-jpeg"
    for split, count in (("train", 3), ("test", 2)):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3)).astype("uint8")).save(root / split / c / f"{i}.jpg")
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar10-jpeg")
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_cifar10_in_memory.py"), "--data", str(archive),
         "--model", "wrn-40-1", "--out", str(run), "--epochs", "2", "--batch-size", "10",
         "--precision", "float32", "--test-every", "1"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2 epochs" in result.stdout
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("test_error" in r for r in records)
    config = json.loads((run / "config.json").read_text())
    assert config["backend"] == "jax" and config["config"]["model"] == "wrn-40-1"
    assert config["config"]["lr_boundaries"] == [] or all(b >= 2 for b in config["config"]["lr_boundaries"])
    trained_error = json.loads((run / "result.json").read_text())["test_error"]

    from click.testing import CliRunner

    from keras_wrn.cli import main

    evaluated = CliRunner().invoke(main, ["evaluate", str(run), "--weights", "last", "--data-dir", str(root),
                                          "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    measured = json.loads(evaluated.output[evaluated.output.index("{"):])
    assert measured["num_examples"] == 20
    assert measured["test_error"] == pytest.approx(trained_error, abs=0.051)  # float32 on both: at most 1 of 20


def test_the_in_memory_example_refuses_a_used_run_folder(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_cifar10_in_memory.py"), "--data", str(tmp_path),
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode != 0 and "already holds a run" in result.stderr
