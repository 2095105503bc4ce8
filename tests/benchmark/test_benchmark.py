"""The benchmark's machinery: timing windows, the torch worker, GFLOP/s and
peak bookkeeping, and that the reference is the same network as keras-wrn.
The speed figures themselves live in benchmarks/, never in tests."""

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from keras_wrn.benchmark import SETTINGS, keras_cases, run_benchmark, run_settings, timing
from keras_wrn.benchmark.results import CASE_FIELDS, SCHEMA, case_summary, read_result
from keras_wrn.cli import main

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_windows_measure_rates():
    def sleepy():
        time.sleep(0.01)

    result = timing.interleaved({"a": timing.LocalCase(sleepy, 10), "b": timing.LocalCase(sleepy, 20)},
                                windows=3, warmup_calls=1, min_seconds=0.05)
    assert len(result["a"]["windows"]) == 3
    assert 500 < result["a"]["images_per_second"] <= 1000  # 10 images per >= 10 ms
    assert result["b"]["images_per_second"] == pytest.approx(2 * result["a"]["images_per_second"], rel=0.3)
    assert result["a"]["images_per_second_min"] <= result["a"]["images_per_second"] <= \
        result["a"]["images_per_second_max"]
    assert result["a"]["seconds_per_call"] >= 0.01


def test_one_run_reports_flops_and_peak(tmp_path):
    result = run_benchmark("wrn-16-4", 2, parts=("infer", "latency"), windows=1, min_seconds=0.0,
                           reference=HAS_TORCH, log=lambda message: None)
    assert result["schema"] == SCHEMA and result["peak"]["gflops"] > 1 and result["peak"]["dtype"] == "float32"
    for name, case in result["cases"].items():
        assert case["gflops"] == pytest.approx(case["images_per_second"] * 2 * result["macs_per_image"] / 1e9)
        assert case["fraction_of_peak"] == pytest.approx(case["gflops"] / result["peak"]["gflops"])
    assert set(result["cases"]) >= {"keras_infer", "keras_latency"}
    if HAS_TORCH:
        assert result["ratios"]["infer"] == pytest.approx(
            result["cases"]["keras_infer"]["images_per_second"] / result["cases"]["torch_infer"]["images_per_second"])
    else:
        assert "torch is not installed" in result["note"]
    json.dumps(result)


RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks", "results")


def test_one_reader_brings_every_result_into_one_schema():
    """The CPU and GPU results written before the schema, read by the one
    reader, have its fields; a fresh summary follows its formula."""
    cpu_result = read_result(os.path.join(RESULTS, "wrn-16-4-b64-xla.json"))
    gpu_result = read_result(os.path.join(RESULTS, "gpu-wrn-28-10-b128-jax.json"))
    for result in (cpu_result, gpu_result):
        assert result["schema"] == SCHEMA and {"model", "batch_size", "backend", "device", "peak", "cases",
                                               "ratios", "macs_per_image", "date"} <= set(result)
        for case in result["cases"].values():
            assert set(CASE_FIELDS) <= set(case)
            assert case["fraction_of_peak"] == pytest.approx(case["gflops"] / result["peak"]["gflops"])
    assert (cpu_result["peak"]["dtype"], gpu_result["peak"]["dtype"]) == ("float32", "bfloat16")
    assert gpu_result["cases"]["keras_train"]["gflops"] == pytest.approx(316822.5, rel=1e-5)  # 317 TFLOP/s
    assert read_result(gpu_result) == gpu_result
    summary = case_summary([10.0, 30.0, 20.0], flops_per_image=2e9, peak_gflops=100.0)
    assert (summary["images_per_second"], summary["gflops"], summary["fraction_of_peak"]) == (20.0, 40.0, 0.4)


def test_cli_writes_json(tmp_path):
    out = tmp_path / "result.json"
    outcome = CliRunner().invoke(main, ["benchmark", "--model", "wrn-16-4", "--batch-size", "2", "--parts", "infer",
                                        "--windows", "1", "--min-seconds", "0", "--no-reference",
                                        "--json-out", str(out)], catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    assert "keras_infer" in outcome.output and "% of peak" in outcome.output
    assert json.loads(out.read_text())["cases"]["keras_infer"]["images_per_second"] > 0


def test_training_step_through_the_input_pipeline():
    """The trainer's step fed by keras_wrn.data (shuffle, batch, prefetch,
    repeating) trains: the loss stays finite and changes."""
    step = keras_cases.training_step("wrn-16-4", 2, xla=False, input_pipeline=True)
    losses = [step() for _ in range(3)]
    assert all(np.isfinite(losses)) and len(set(losses)) > 1


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_settings_sweep_times_every_setting_in_its_own_process():
    names = ["default", "no-xla", "no-xla-mixed-bfloat16", "jax-fit", "model-channels-first", "reference",
             "reference-bfloat16"]
    result = run_settings("wrn-16-4", 2, names=names, windows=1, min_seconds=0.0, log=lambda m: None)
    assert list(result["cases"]) == names
    default = result["cases"]["default"]["images_per_second"]
    for name, case in result["cases"].items():
        assert case["images_per_second"] > 0 and case["description"] == SETTINGS[name].description
        assert case["ratio_to_default"] == pytest.approx(case["images_per_second"] / default)
        assert case["gflops"] == pytest.approx(case["images_per_second"] * 6 * result["macs_per_image"] / 1e9)
    json.dumps(result)


def test_bad_input():
    with pytest.raises(ValueError, match="ImageNet model"):
        run_benchmark("wrn-50-2-bottleneck", 2, parts=("infer",), log=lambda m: None)
    with pytest.raises(ValueError, match="Unknown benchmark parts"):
        run_benchmark("wrn-16-4", 2, parts=("inference",), log=lambda m: None)
    outcome = CliRunner().invoke(main, ["benchmark", "--model", "wrn-99-1"])
    assert outcome.exit_code == 1 and "wrn-99-1" in outcome.output
    outcome = CliRunner().invoke(main, ["benchmark", "--settings", "default,turbo"])
    assert outcome.exit_code == 1 and "Unknown settings ['turbo']" in outcome.output
    with pytest.raises(ValueError, match="ImageNet model"):
        run_settings("wrn-50-2-bottleneck", 2, log=lambda m: None)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("options", [pytest.param({}, id="float32"), pytest.param(
    {"autocast": "bfloat16"}, id="bf16-autocast", marks=pytest.mark.slow)])
def test_torch_worker_runs_the_reference(options):
    case = timing.WorkerCase(kind="train", depth=10, k=1, num_classes=10, batch_size=4, threads=1,
                             options=options)
    try:
        case.warmup(1)
        rate, seconds = case.window(0.0)
        assert rate > 0 and seconds > 0
    finally:
        case.close()
    with pytest.raises(timing.WorkerError, match="worker failed: KeyError"):
        timing.WorkerCase(kind="fly", depth=10, k=1, num_classes=10, batch_size=4)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_the_reference_is_the_same_network_with_the_official_init(tmp_path):
    """The timed torch code computes keras-wrn's WRN: the same logits from the
    same weights (eval mode), and it initialises BN weights as U[0, 1)."""
    script = (
        "import numpy as np, torch\n"
        "from keras_wrn.benchmark import torch_reference as r\n"
        "torch.manual_seed(0)\n"
        "params, buffers = r.official_params(10, 2, 10)\n"
        "for name in buffers:\n"
        "    buffers[name] = torch.rand_like(buffers[name]) + 0.5\n"
        "x = torch.randn(2, 3, 32, 32)\n"
        "logits = r.official_forward(x, params, buffers, 10).detach().numpy()\n"
        "state = {k: v.detach().numpy() for k, v in {**params, **buffers}.items()}\n"
        "np.savez(sys.argv[1], x=x.numpy(), logits=logits, **state)\n"
    )
    path = str(tmp_path / "reference.npz")
    # torch runs in its own process (it crashes when loaded after TensorFlow).
    subprocess.run([sys.executable, "-c", "import sys\n" + script, path], check=True, timeout=300,
                   env={**os.environ, "KERAS_BACKEND": "torch"})
    stored = dict(np.load(path))
    x, expected = stored.pop("x"), stored.pop("logits")
    bn_weights = np.concatenate([v for k, v in stored.items() if k.endswith("bn0.weight")])
    assert 0.0 <= bn_weights.min() and bn_weights.max() < 1.0 and bn_weights.std() > 0.2

    import keras_wrn
    from keras_wrn.convert import to_keras_layer_weights
    from keras_wrn.models import weights_io

    model = keras_wrn.WideResNet(10, 2, num_classes=10, classifier_activation=None)
    weights_io.assign_layer_weights(model, to_keras_layer_weights(stored)[1])
    got = np.asarray(model(x.transpose(0, 2, 3, 1), training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_run_all_renders_the_readme_tables_from_the_committed_results():
    """benchmarks/run_all.py --table-only's rendering, on the results in the repository."""
    import glob
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location("run_all", os.path.join(root, "benchmarks", "run_all.py"))
    run_all = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_all)
    sweeps = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run_all.RESULTS, "settings-*.json")))]
    assert sweeps, "benchmarks/results/ holds no settings sweep"
    text = run_all.settings_table(sweeps)
    lines = text.splitlines()
    assert lines[0].count("img/s (x default, % of peak)") == len(sweeps)
    default = next(line for line in lines if line.startswith("| `default`"))
    assert default.count("(x1.00,") == sum("default" in sweep["cases"] for sweep in sweeps)
    for sweep in sweeps:
        for name, case in sweep["cases"].items():
            row = next(line for line in lines if line.startswith(f"| `{name}`"))
            ratio = f"x{case['ratio_to_default']:.2f}, " if "default" in sweep["cases"] else ""  # a sweep without it
            assert f"{case['images_per_second']:.2f} ({ratio}{100 * case['fraction_of_peak']:.0f}%)" in row
    page = open(os.path.join(root, "docs", "benchmarks.md")).read()
    assert text in page, "the sweep table of docs/benchmarks.md is stale: run python benchmarks/run_all.py --table-only"
    kernels = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(run_all.RESULTS, "onednn-*.json")))]
    assert kernels, "benchmarks/results/ holds no oneDNN kernel breakdown"
    text = run_all.kernels_table(kernels, run_all.cpu_label)
    assert len(text.splitlines()) == 2 + sum(len(k["precisions"]) for k in kernels) + 2
    assert text in page, \
        "the kernel table of docs/benchmarks.md is stale: run python benchmarks/run_all.py --table-only"


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_the_official_training_loop_learns_and_records_each_epoch():
    """`main.py`'s loop (the control job's official side) on a separable toy
    set: two epochs recorded, the rate dropped at the second, errors fall."""
    from keras_wrn.benchmark.torch_reference import official_cifar_training

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 96)
    images = np.where(labels[:, None, None, None] == 1, 200, 40) + rng.integers(0, 30, (96, 8, 8, 3))
    images = images.astype("uint8")
    seen = []
    records, predict = official_cifar_training(images[:64], labels[:64], images[64:], labels[64:], depth=10, k=1,
                                               epochs=2, batch_size=16, epoch_step=(2,), on_epoch=seen.append)
    assert records == seen and [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [4, 8]
    assert records[1]["learning_rate"] == pytest.approx(0.1 * 0.2)
    assert records[-1]["test_error"] < 0.5
    assert predict(images[64:]).shape == (32, 2)
