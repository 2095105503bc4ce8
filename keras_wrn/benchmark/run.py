"""One benchmark run: training and inference throughput of keras-wrn and of
the official PyTorch reference, interleaved, plus the deployment formats;
images/s, achieved GFLOP/s and the fraction of the measured matmul peak."""

import datetime
import importlib.util
import os

from keras_wrn.benchmark import keras_cases, timing
from keras_wrn.benchmark.peak import describe_machine, machine, matmul_peak_gflops
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.provenance import package_versions

PARTS = ("train", "infer", "latency", "savedmodel", "tflite")
TFLITE_VARIANTS = ("none", "float16", "dynamic", "int8")


def _flops(summary, flops_per_image, peak):
    rate = summary["images_per_second"]
    summary["gflops"] = rate * flops_per_image / 1e9
    summary["fraction_of_peak"] = summary["gflops"] / peak
    return summary


def torch_available():
    return importlib.util.find_spec("torch") is not None


def reference_case(kind, model_spec, batch_size, threads, options=None):
    """The official PyTorch code ("train" or "infer") for a CIFAR model, in
    its worker process (`options`: `{"autocast": "bfloat16"}` for training)."""
    return timing.WorkerCase(kind=kind, depth=model_spec.kwargs["depth"], k=model_spec.kwargs["k"],
                             num_classes=10, batch_size=batch_size, threads=threads, options=options or {})


def run_benchmark(model_name, batch_size, *, parts=PARTS, xla=True, reference=True, windows=5,
                  min_seconds=2.0, threads=None, input_pipeline=False, precision="float32", log=print):
    """Returns a JSON-able dict of every measured case (see README, Benchmarks)."""
    import keras

    from keras_wrn.models import registry

    spec = registry.get_model_spec(model_name)
    if spec.family != "cifar":
        raise InvalidArgumentError(f"The benchmark times the CIFAR models (32x32 inputs) against the official "
                         f"CIFAR code; {model_name} is an ImageNet model.")
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise InvalidArgumentError(f"Unknown benchmark parts {sorted(unknown)}; choose from {PARTS}.")
    threads = threads or os.cpu_count()
    macs = spec.macs
    log(f"measuring the matmul peak ({threads} threads)...")
    peak = matmul_peak_gflops()
    result = {
        "model": model_name, "batch_size": batch_size, "backend": keras.backend.backend(),
        "settings": {"xla": xla, "precision": precision, "input_pipeline": input_pipeline, "threads": threads},
        "macs_per_image": macs, "matmul_peak_gflops": peak, "machine": machine(), "versions": package_versions("torch", "ai-edge-litert", "numpy"),
        "date": datetime.date.today().isoformat(), "cases": {}, "ratios": {},
    }
    reference = reference and torch_available()
    if not torch_available():
        result["note"] = "torch is not installed: no reference timings (pip install 'keras-wrn[torch]')"

    def torch_case(kind, batch):
        return reference_case(kind, spec, batch, threads)

    def measure(group, cases, flops_per_image):
        log(f"timing {', '.join(cases)} ...")
        measured = timing.interleaved(cases, windows=windows, min_seconds=min_seconds)
        for name, summary in measured.items():
            result["cases"][name] = _flops(summary, flops_per_image, peak)

    if "train" in parts:
        cases = {"keras_train": timing.LocalCase(keras_cases.training_step(
            model_name, batch_size, xla=xla, precision=precision, input_pipeline=input_pipeline), batch_size)}
        if reference:
            cases["torch_train"] = torch_case("train", batch_size)
        measure("train", cases, 3 * 2 * macs)  # forward + backward (twice the forward)
        if reference:
            result["ratios"]["train"] = (result["cases"]["keras_train"]["images_per_second"]
                                         / result["cases"]["torch_train"]["images_per_second"])
    if "infer" in parts:
        cases = {"keras_infer": timing.LocalCase(keras_cases.inference_step(model_name, batch_size, xla=xla),
                                                 batch_size)}
        if reference:
            cases["torch_infer"] = torch_case("infer", batch_size)
        measure("infer", cases, 2 * macs)
        if reference:
            result["ratios"]["infer"] = (result["cases"]["keras_infer"]["images_per_second"]
                                         / result["cases"]["torch_infer"]["images_per_second"])
    if "latency" in parts:
        cases = {"keras_latency": timing.LocalCase(keras_cases.inference_step(model_name, 1, xla=xla), 1)}
        if reference:
            cases["torch_latency"] = torch_case("infer", 1)
        measure("latency", cases, 2 * macs)
    if "savedmodel" in parts:
        measure("savedmodel", {"savedmodel_infer": timing.LocalCase(
            keras_cases.savedmodel_step(model_name, batch_size), batch_size)}, 2 * macs)
    if "tflite" in parts:
        cases = {}
        for quantize in TFLITE_VARIANTS:
            cases[f"tflite_{quantize}_latency"] = timing.LocalCase(
                keras_cases.tflite_step(model_name, 1, quantize, threads=threads), 1)
        measure("tflite", cases, 2 * macs)
        result["ratios"]["tflite_int8_over_float32_latency"] = (
            result["cases"]["tflite_none_latency"]["seconds_per_call"]
            / result["cases"]["tflite_int8_latency"]["seconds_per_call"])
    return result


def format_table(result):
    """Plain-text lines of one result."""
    lines = [f"{result['model']}, batch {result['batch_size']}, backend {result['backend']}, "
             f"settings {result['settings']}, matmul peak {result['matmul_peak_gflops']:.0f} GFLOP/s, "
             f"on {describe_machine(result['machine'])}"]
    for name, case in result["cases"].items():
        lines.append(f"  {name:28s} {case['images_per_second']:9.2f} img/s (min {case['images_per_second_min']:.2f}, "
                     f"max {case['images_per_second_max']:.2f})  {case['gflops']:7.1f} GFLOP/s  "
                     f"{100 * case['fraction_of_peak']:5.1f}% of peak  {1000 * case['seconds_per_call']:8.1f} ms/call")
    for name, ratio in result["ratios"].items():
        lines.append(f"  ratio {name}: {ratio:.2f}")
    if result.get("note"):
        lines.append(f"  note: {result['note']}")
    return lines
