"""The GPU kit, whole, on this CPU: `pack`, then each job end to end at a
tiny size (WRN-40-1, a few hundred images, two epochs) from the packed
folder, with the wheels this Python can take (the pure-Python ones: Keras
and namex) installed into a scratch folder as the device installs them all,
and what the job leaves in `$OUT` checked against what the device tool
brings back and read by the code that consumes it. The GPU itself is never
needed; `../shared/data` neither (the tests make their own CIFAR-shaped
archive). Slow: each job starts JAX and PyTorch for real."""

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPU = os.path.join(ROOT, "benchmarks", "gpu")
sys.path.insert(0, GPU)
import kit  # noqa: E402
from tests.helpers import CLI, ENV  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("jax") is None or importlib.util.find_spec("torch") is None,
    reason="the kit's jobs need JAX and PyTorch")]
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def cifar_like(folder, train_per_class=20, test_per_class=5, exact=30):
    """A CIFAR-10-shaped JPEG archive and exact-pixel `.npz`, in the shared data's names."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = folder / "cifar10-jpeg"
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = np.clip(25 * label + rng.integers(0, 40, (32, 32, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(root / split / name / f"{i:04d}.jpg", quality=90)
    with tarfile.open(folder / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        tar.add(root, arcname="cifar10-jpeg")
    labels = np.arange(exact) % 10
    images = np.clip(25 * labels[:, None, None, None] + rng.integers(0, 40, (exact, 32, 32, 3)), 0, 255)
    np.savez(folder / "cifar10-test-exact-1017.npz", images=images.astype("uint8"), labels=labels.astype("uint8"))


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    shared = tmp_path_factory.mktemp("shared")
    cifar_like(shared)
    kit_folder = tmp_path_factory.mktemp("kit") / ".gpu-kit"
    result = subprocess.run([sys.executable, os.path.join(GPU, "pack.py"), "pack", "--kit", str(kit_folder),
                             "--shared", str(shared)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return kit_folder, result.stdout, tmp_path_factory.mktemp("site")


def run_job(script, packed, out, *args, timeout=900):
    kit_folder, _, site = packed
    env = {**os.environ, "KERAS_WRN_KIT": str(kit_folder), kit.SITE_ENV: str(site), "JAX_PLATFORMS": "cpu",
           "KERAS_WRN_CACHE": str(out.parent / "cache")}
    env.pop("KERAS_WRN_KIT_BOOTSTRAPPED", None)
    result = subprocess.run([sys.executable, os.path.join(GPU, script), "--out", str(out), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def check_brought_back(out):
    """What the device tool returns of `$OUT`: at most 8 files of 16 MiB, 64 MiB together, plain names."""
    found = [os.path.join(folder, name) for folder, _, names in os.walk(out) for name in names]
    assert 0 < len(found) <= kit.QUOTAS.files_back
    assert all(os.path.getsize(path) <= kit.QUOTAS.file_bytes for path in found)
    assert sum(os.path.getsize(path) for path in found) <= kit.QUOTAS.total_bytes
    assert all(set(os.path.basename(path)) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
               for path in found)
    return sorted(os.path.basename(path) for path in found)


def test_pack_writes_the_wheels_and_data_and_prints_every_call(packed):
    kit_folder, printed, _ = packed
    wheels = sorted(os.listdir(kit_folder / kit.WHEELS))
    assert [w.split("-")[0] for w in wheels] == ["keras", "namex", "optree"]
    assert any("cp312" in w and "manylinux" in w for w in wheels)  # the device's Python, not this one
    assert sorted(os.listdir(kit_folder / kit.DATA)) == ["cifar10-jpeg.tar.gz", "cifar10-test-exact-1017.npz"]
    travels = float(printed.split("travels: ")[1].split(" MiB")[0])
    assert travels < kit.QUOTAS.carry_bytes / kit.MIB
    calls = {line.split(": run(")[0]: json.loads(line.split(": run(", 1)[1][:-1])
             for line in printed.splitlines() if ": run(" in line}
    assert {"speed", "control", "weights", "speed+control"} <= set(calls)
    assert all(len(call["command"]) < kit.QUOTAS.command_characters for call in calls.values())
    assert calls["speed+control"]["carry"] == [".gpu-kit"] and calls["speed+control"]["timeout_s"] <= 600


def test_speed_measures_both_sides_and_skips_what_the_budget_cannot_hold(packed, tmp_path):
    """A budget cut short on purpose: torch.compile does not fit, and the
    job says so and still writes its results."""
    out = tmp_path / "out"
    run_job("speed.py", packed, out, "--budget", 75, "--models", "wrn-40-1", "--batch-size", 8, "--steps", 3,
            "--windows", 2, "--window-seconds", 0.5, "--matmul-size", 256, "--compile-estimate", 30)
    assert check_brought_back(out) == ["gpu-speed-wrn-40-1-b8.json", "log.txt"]
    result = json.loads((out / "gpu-speed-wrn-40-1-b8.json").read_text())
    assert {"keras_train", "keras_infer", "torch_eager_train", "torch_eager_infer"} <= set(result["cases"])
    assert any(entry.startswith("torch_compiled") for entry in result["skipped"])
    assert result["cases"]["keras_train"]["images_per_second"] > 0
    assert result["ratios"]["train_over_fastest_torch"] > 0
    assert result["keras_from"].startswith(str(packed[2]))  # the carried wheel, installed as on the device
    assert result["spent_seconds"] <= 75
    import importlib.util as util

    spec = util.spec_from_file_location("run_all", os.path.join(ROOT, "benchmarks", "run_all.py"))
    run_all = util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    assert "| wrn-40-1 | 8 |" in run_all.gpu_table([result])
    # `keras-wrn benchmark` on this CPU writes the same schema; one reader reads both.
    from keras_wrn.benchmark.results import CASE_FIELDS, SCHEMA, read_result

    cpu_path = tmp_path / "cpu.json"
    cpu_run = subprocess.run([*CLI, "benchmark", "--model", "wrn-16-4", "--batch-size", "2", "--parts", "train",
                              "--windows", "1", "--min-seconds", "0", "--no-reference", "--json-out", cpu_path],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert cpu_run.returncode == 0, cpu_run.stderr[-2000:]
    both = [read_result(out / "gpu-speed-wrn-40-1-b8.json"), read_result(cpu_path)]
    assert [r["schema"] for r in both] == [SCHEMA, SCHEMA] and result["schema"] == SCHEMA
    assert {"model", "batch_size", "backend", "device", "peak", "cases", "ratios", "macs_per_image", "date"} \
        <= set(both[0]) & set(both[1])
    for r in both:
        assert set(CASE_FIELDS) <= set(r["cases"]["keras_train"])


def test_control_trains_both_implementations_twice(packed, tmp_path):
    out = tmp_path / "out"
    run_job("control.py", packed, out, "--budget", 400, "--model", "wrn-40-1", "--epochs", 2, "--batch-size", 20,
            "--runs-dir", tmp_path / "runs", "--epoch-estimate", 20)
    assert check_brought_back(out) == ["control.json", "control.png", "log.txt"]
    control = json.loads((out / "control.json").read_text())
    runs = [(run["implementation"], run["seed"]) for run in control["runs"]]
    assert runs == [("keras-wrn", 0), ("official PyTorch code", 0), ("keras-wrn", 1), ("official PyTorch code", 1)]
    for run in control["runs"]:
        assert [r["epoch"] for r in run["records"]] == [1, 2]
        assert 0 <= run["jpeg_test_accuracy"] <= 1 and 0 <= run["exact_1017_accuracy"] <= 1
    assert control["recipe"]["train_images"] == 200 and control["recipe"]["lr_boundaries"] == [2]  # 160/200 of 2


def test_weights_come_back_in_parts_that_join_into_loadable_weights(packed, tmp_path):
    out, left_behind = tmp_path / "out", tmp_path / "left-behind"
    run_job("weights.py", packed, out, "--budget", 240, "--model", "wrn-40-1", "--epochs", 2, "--batch-size", 20,
            "--part-mib", 0.1, "--run-dir", tmp_path / "run", "--left-behind", left_behind)
    brought = check_brought_back(out)
    record = json.loads((out / "record.json").read_text())
    assert {"record.json", "metrics.jsonl", "curves.png", "log.txt"} <= set(brought)
    assert record["epochs_done"] == 2 and len(record["weights"]["parts"]) > 4
    assert record["parts_brought"] and record["parts_left_on_device"]  # 8 files at most: a second call
    second = tmp_path / "second"
    second.mkdir()
    subprocess.run(record["second_call"].replace("$OUT", str(second)), shell=True, check=True, cwd=ROOT)
    joined = tmp_path / "wrn-40-1-cifar10.weights.npz"
    result = subprocess.run([sys.executable, os.path.join(GPU, "pack.py"), "join", str(out), str(second), "--to",
                             str(joined)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(open(joined, "rb").read()).hexdigest() == record["weights"]["sha256"]
    import keras_wrn

    model = keras_wrn.get_model("wrn-40-1", weights=str(joined), classifier_activation=None)
    assert keras_wrn.count_params(model) == keras_wrn.get_model_spec("wrn-40-1").params
    # A damaged part is named, and nothing is written.
    part = second / record["parts_left_on_device"][0]
    part.write_bytes(part.read_bytes()[:-1] + b"x")
    joined.unlink()
    result = subprocess.run([sys.executable, os.path.join(GPU, "pack.py"), "join", str(out), str(second), "--to",
                             str(joined)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "does not match its SHA-256" in result.stderr and not joined.exists()
