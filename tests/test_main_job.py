"""The README's main job, end to end through the installed `keras-wrn`
command: train on the embedded digits, then evaluate the run folder."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

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
