"""The examples run as a user would run them."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.helpers import write_folder

pytestmark = pytest.mark.slow  # each example trains or builds for real

ROOT = pathlib.Path(__file__).parents[1]
# Examples that need a dataset on disk, or whose result is checked, have their own test below.
OWN_TEST = {"train_cifar10_in_memory.py", "distill_attention_transfer.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in OWN_TEST)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()


def cifar_like_images(tmp_path):
    """A made-up CIFAR-10-shaped copy (2 images a class in train/ and in
    test/) and a .tar.gz of it: `(folder, archive)`."""
    import tarfile

    root = tmp_path / "cifar10-jpeg"
    write_folder(root, classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                "truck"), per_class=2, size=32)
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="cifar10-jpeg")
    return root, archive


def test_cifar10_in_memory_example_makes_a_run_folder_keras_wrn_reads(tmp_path):
    """The GPU route (JAX, Keras fit from arrays) on a made-up CIFAR-10-shaped
    JPEG archive; its run folder is then evaluated by `keras-wrn evaluate`
    (TensorFlow) exactly as the published weights were, from the same archive."""
    import json

    root, archive = cifar_like_images(tmp_path)
    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_cifar10_in_memory.py"), "--data", str(archive),
         "--model", "wrn-40-1", "--out", str(run), "--epochs", "2", "--batch-size", "10",
         "--precision", "float32"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: 2 epochs" in result.stdout
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("test_error" in r for r in records)
    config = json.loads((run / "config.json").read_text())
    assert config["trainer"] == "keras-fit" and config["config"]["model"] == "wrn-40-1"
    assert config["config"]["data_dir"] == str(archive) and config["devices"]
    assert config["config"]["lr_boundaries"] == [] or all(b >= 2 for b in config["config"]["lr_boundaries"])
    trained_error = records[-1]["test_error"]

    from click.testing import CliRunner

    from keras_wrn.cli import main

    evaluated = CliRunner().invoke(main, ["evaluate", str(run), "--weights", "last", "--data-dir", str(archive),
                                          "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    measured = json.loads(evaluated.output[evaluated.output.index("{"):])
    assert measured["num_examples"] == 20
    assert measured["test_error"] == pytest.approx(trained_error, abs=0.051)  # float32 on both: at most 1 of 20


def test_the_in_memory_example_refuses_another_runs_folder(tmp_path):
    from keras_wrn import files
    from keras_wrn.training.config import TrainConfig

    root, _ = cifar_like_images(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig.from_preset("cifar10", model="wrn-16-4", run_dir=str(run))
    files.write_json(run / "config.json", {"config": config.to_dict()})
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_cifar10_in_memory.py"), "--data", str(root),
         "--out", str(run), "--model", "wrn-40-1", "--batch-size", "10"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    assert result.returncode != 0 and "belongs to another run: model='wrn-16-4'" in result.stderr


def test_attention_transfer_teaches_the_student():
    script = ROOT / "examples" / "distill_attention_transfer.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    student = float(result.stdout.split("test accuracy ")[-1].split()[0])
    assert student >= 0.9, result.stdout
