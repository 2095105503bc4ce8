"""The keras-wrn command: through click's runner and the installed script."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import keras_wrn
from keras_wrn.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_models_table_lists_the_registry():
    result = run("models")
    assert result.exit_code == 0
    for name in ("wrn-28-10", "wrn-50-2-bottleneck", "wrn-18-1.5-imagenet"):
        assert name in result.output
    assert "36.5M" in result.output and "5.243" in result.output and "20.5" in result.output


def test_models_json_and_filters():
    records = json.loads(run("models", "--json", "--family", "imagenet").output)
    assert {r["name"] for r in records} == set(keras_wrn.list_models(family="imagenet"))
    wrn50 = next(r for r in records if r["name"] == "wrn-50-2-bottleneck")
    assert wrn50["params"] == 68_883_240
    assert wrn50["paper"][0] == {"dataset": "imagenet", "error": 21.9, "top5_error": 6.03,
                                 "table": "Table 8", "note": "single crop"}
    assert run("models", "--filter", "nothing-*").exit_code == 1


def test_summary_builds_and_measures():
    result = run("summary", "wrn-16-4", "--json", "--num-classes", "100")
    record = json.loads(result.output)
    assert record["built_params"] == 2_748_890 + 90 * 257  # 100-way classifier
    assert record["built_macs"] == 392_612_352 + 90 * 256
    assert record["output_shape"] == [100]
    text = run("summary", "wrn-16-4").output
    assert "group3_block2_conv2" in text and "Table 6" in text


def test_bad_input_gives_clear_errors():
    result = CliRunner().invoke(main, ["summary", "wrn-28-11"])
    assert result.exit_code == 2
    assert "Unknown model 'wrn-28-11'" in result.output and "wrn-28-10" in result.output
    result = CliRunner().invoke(main, ["summary", "wrn-16-4", "--input-size", "2"])
    assert result.exit_code == 1
    assert "at least 4x4" in result.output


SCRIPT = shutil.which("keras-wrn", path=os.path.dirname(sys.executable)) or shutil.which("keras-wrn")


@pytest.mark.skipif(SCRIPT is None, reason="keras-wrn is not installed (pip install -e .)")
def test_installed_console_script():
    result = subprocess.run(
        [SCRIPT, "--version"], capture_output=True, text=True, check=True,
        env={**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")},
    )
    assert keras_wrn.__version__ in result.stdout


@pytest.mark.skipif(SCRIPT is None, reason="keras-wrn is not installed (pip install -e .)")
@pytest.mark.parametrize("args", [["--help"], ["models"], ["train", "--help"]])
def test_help_and_models_load_no_backend_and_print_no_framework_logs(args):
    result = subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert result.returncode == 0
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"keras", "tensorflow", "jax", "torch"}
    assert not [line for line in result.stderr.splitlines() if not line.startswith("import time:")]
    assert "Usage:" in result.stdout or "wrn-28-10" in result.stdout


def test_choices_come_from_the_library():
    from keras_wrn.export.tflite import QUANTIZATIONS
    from keras_wrn.training.config import PRECISIONS, STRATEGIES

    text = run("train", "--help").output + run("export", "--help").output
    for choice in (*STRATEGIES, *PRECISIONS, *QUANTIZATIONS):
        assert choice in text
