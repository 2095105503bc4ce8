"""Helpers shared by the test modules: data the tests make, random weights in
the official code's layout, and the two ways of running the `keras-wrn`
command (in this process, or in a fresh one where a process is the point)."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

CLI = [sys.executable, "-m", "keras_wrn.cli"]
ENV = {**os.environ, "KERAS_BACKEND": "tensorflow"}


def built_once(tmp_path_factory, name, build):
    """A folder that `build(folder)` fills once per test session, shared by
    the pytest-xdist workers (their recipe for a session fixture that runs
    once): the first worker builds it under the session's common temporary
    folder while the others wait on its lock, then all read it. A build that
    failed is started again, not reused."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder = root / name
    with FileLock(f"{folder}.lock"):
        if not (root / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (root / f"{name}.built").touch()
    return folder


def failure(stderr, keep=1500):
    """A failed process's standard error for an assertion message: its
    first and last `keep` characters, without the list of extension modules
    Python's fatal-error report ends with (which alone would fill the tail)."""
    text = re.sub(r"\nExtension modules: .*?\(total: \d+\)", "", stderr, flags=re.DOTALL)
    return text if len(text) <= 2 * keep else f"{text[:keep]}\n[...]\n{text[-keep:]}"


def kill_when(process, moment, *, timeout, poll=0.1):
    """SIGKILL `process` (a `subprocess.Popen`) as soon as `moment()` is
    true: a real kill at a chosen point of its work. Waits for the process;
    true when it was killed there, false when it ended or the timeout passed
    first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if moment():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(poll)
    process.wait()
    return False


def run_cli(*args, env=None, timeout=600):
    """`keras-wrn ARGS` in a fresh process: for what needs one (a kill, a
    second process, device set-up, the installed command's output)."""
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**ENV, **(env or {})})


def invoke(*args):
    """`keras-wrn ARGS` in this process (click's CliRunner): exit code,
    output and the one-line error, without a process's start-up."""
    from click.testing import CliRunner

    from keras_wrn.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def metrics(run_dir):
    """The records of a run folder's metrics.jsonl."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as handle:
        return [json.loads(line) for line in handle]


def tensorboard_scalars(run_dir):
    """The TensorBoard scalars of a run folder, read by TensorBoard's own
    event reader, every event (not its default sample of 10): {tag: {step: value}}."""
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    events = event_accumulator.EventAccumulator(os.path.join(run_dir, "tensorboard"),
                                                size_guidance={event_accumulator.TENSORS: 0})  # keep all
    events.Reload()
    return {tag: {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}
            for tag in events.Tags()["tensors"]}


def write_folder(root, classes=("cat", "dog"), per_class=3, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            os.makedirs(root / split / c)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3)).astype("uint8")
                Image.fromarray(pixels).save(root / split / c / f"{i}.png")


def official_params(depth, k, num_classes, rng):
    """Random official-layout parameters with non-trivial BN statistics."""
    n = (depth - 4) // 6
    widths = [int(v * k) for v in (16, 32, 64)]
    params = {"conv0": rng.normal(0, np.sqrt(2 / 27), (16, 3, 3, 3))}

    def bn(base, c):
        params[base + ".weight"] = rng.uniform(0.5, 1.5, c)
        params[base + ".bias"] = rng.normal(0, 0.1, c)
        params[base + ".running_mean"] = rng.normal(0, 0.1, c)
        params[base + ".running_var"] = rng.uniform(0.5, 2.0, c)

    ni = 16
    for g, no in enumerate(widths):
        for b in range(n):
            base = f"group{g}.block{b}"
            cin = ni if b == 0 else no
            params[base + ".conv0"] = rng.normal(0, np.sqrt(2 / (9 * cin)), (no, cin, 3, 3))
            params[base + ".conv1"] = rng.normal(0, np.sqrt(2 / (9 * no)), (no, no, 3, 3))
            bn(base + ".bn0", cin)
            bn(base + ".bn1", no)
            if cin != no:
                params[base + ".convdim"] = rng.normal(0, np.sqrt(2 / cin), (no, cin, 1, 1))
        ni = no
    bn("bn", widths[2])
    params["fc.weight"] = rng.normal(0, np.sqrt(2 / widths[2]), (num_classes, widths[2]))
    params["fc.bias"] = rng.normal(0, 0.1, num_classes)
    return params


def digits_arrays(split):
    """uint8 (N, 8, 8, 1) images and labels of the embedded digits split."""
    from keras_wrn import data

    source = data.load_split(data.get_dataset_spec("digits"), split).source
    images, labels = zip(*source.as_numpy_iterator())
    return np.stack(images), np.array(labels)


def fill(folder, leave=64 * 1024):
    """Fills the file system of `folder` but `leave` bytes, with one ballast file."""
    stat = os.statvfs(folder)
    with open(os.path.join(folder, "ballast"), "wb") as handle:
        handle.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def backend_report(script, backend, *args, **env):
    """Runs `script` (`python -c`) under `KERAS_BACKEND=backend` in a fresh
    process, with the repository first on its path as `sys.argv[1]` and
    `args` after it, and returns the JSON of its last line; skips the test
    where the backend is not installed. `env`: more variables."""
    import importlib.util

    import pytest

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install 'keras-wrn[{backend}]')")
    environment = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
                   **env}
    result = subprocess.run([sys.executable, "-c", script, REPOSITORY, *map(str, args)], capture_output=True,
                            text=True, env=environment, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    return report


def lose_a_peer(args, environments, victim, run_dir, timeout=600):
    """Starts `keras-wrn ARGS` once per environment (the processes of one
    multi-process run), SIGKILLs process `victim` once the run folder holds
    its first epoch, and waits for the others. Returns `(survivors,
    seconds)`: each survivor's `(returncode, stdout, stderr)` and how long
    the last one took to end after the kill."""
    processes = [subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**ENV, **environment}) for environment in environments]
    metrics_file = os.path.join(run_dir, "metrics.jsonl")
    killed = kill_when(processes[victim], lambda: os.path.exists(metrics_file) and len(metrics(run_dir)) >= 1,
                       timeout=timeout)
    assert killed, "the run ended before its first epoch was written"
    started = time.monotonic()
    survivors = []
    for index, process in enumerate(processes):
        if index != victim:
            out, err = process.communicate(timeout=timeout)
            survivors.append((process.returncode, out, err))
    return survivors, time.monotonic() - started


def run_peers(args, environments, timeout=600):
    """`keras-wrn ARGS` once per environment, all at once, to the end:
    `[(returncode, stdout, stderr), ...]`."""
    processes = [subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**ENV, **environment}) for environment in environments]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        results.append((process.returncode, out, err))
    return results
