"""One benchmark run: training and inference throughput of keras-wrn and of
the official PyTorch reference, interleaved, plus the deployment formats;
images/s, achieved GFLOP/s and the fraction of the measured matmul peak."""

import datetime
import importlib.util
import os

from keras_wrn.benchmark import keras_cases, timing
from keras_wrn.benchmark.peak import describe_machine, machine, matmul_peak
from keras_wrn.benchmark.results import SCHEMA
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


# Part -> (keras-wrn's case, the reference's case) whose images/s make its ratio.
RATIOS = {"train": ("keras_train", "torch_train"), "infer": ("keras_infer", "torch_infer")}


def part_cases(part, model_name, batch_size, *, xla, precision, input_pipeline, threads, reference):
    """`(cases, flops_per_image)` of one of PARTS: keras-wrn's cases and,
    with `reference`, the official code's beside them."""
    from keras_wrn.models import registry

    spec = registry.get_model_spec(model_name)
    macs, local = spec.macs, timing.LocalCase
    if part == "train":
        cases = {"keras_train": local(keras_cases.training_step(
            model_name, batch_size, xla=xla, precision=precision, input_pipeline=input_pipeline), batch_size)}
        flops, torch_cases = 3 * 2 * macs, {"torch_train": ("train", batch_size)}  # backward: twice the forward
    elif part == "infer":
        cases = {"keras_infer": local(keras_cases.inference_step(model_name, batch_size, xla=xla), batch_size)}
        flops, torch_cases = 2 * macs, {"torch_infer": ("infer", batch_size)}
    elif part == "latency":
        cases = {"keras_latency": local(keras_cases.inference_step(model_name, 1, xla=xla), 1)}
        flops, torch_cases = 2 * macs, {"torch_latency": ("infer", 1)}
    elif part == "savedmodel":
        cases = {"savedmodel_infer": local(keras_cases.savedmodel_step(model_name, batch_size), batch_size)}
        flops, torch_cases = 2 * macs, {}
    else:
        cases = {f"tflite_{quantize}_latency": local(keras_cases.tflite_step(model_name, 1, quantize, threads=threads),
                                                      1) for quantize in TFLITE_VARIANTS}
        flops, torch_cases = 2 * macs, {}
    if reference:
        cases.update({name: reference_case(kind, spec, batch, threads) for name, (kind, batch) in torch_cases.items()})
    return cases, flops


def _ratios(result, part):
    cases = result["cases"]
    if part in RATIOS and all(name in cases for name in RATIOS[part]):
        ours, theirs = RATIOS[part]
        result["ratios"][part] = cases[ours]["images_per_second"] / cases[theirs]["images_per_second"]
    if part == "tflite":
        result["ratios"]["tflite_int8_over_float32_latency"] = (
            cases["tflite_none_latency"]["seconds_per_call"] / cases["tflite_int8_latency"]["seconds_per_call"])


def run_benchmark(model_name, batch_size, *, parts=PARTS, xla=True, reference=True, windows=5,
                  min_seconds=2.0, threads=None, input_pipeline=False, precision="float32", log=print):
    """Every measured case of `parts`, as a JSON-able result in the schema of
    `benchmark.results` (docs/benchmarks.md)."""
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
    log(f"measuring the matmul peak ({threads} threads)...")
    peak, where = matmul_peak(), machine()
    result = {
        "schema": SCHEMA, "model": model_name, "batch_size": batch_size, "backend": keras.backend.backend(),
        "settings": {"xla": xla, "precision": precision, "input_pipeline": input_pipeline, "threads": threads},
        "device": describe_machine(where), "machine": where, "macs_per_image": spec.macs, "peak": peak,
        "versions": package_versions("torch", "ai-edge-litert", "numpy"),
        "date": datetime.date.today().isoformat(), "cases": {}, "ratios": {},
    }
    reference = reference and torch_available()
    if not torch_available():
        result["note"] = "torch is not installed: no reference timings (pip install 'keras-wrn[torch]')"
    for part in (part for part in PARTS if part in parts):
        cases, flops_per_image = part_cases(part, model_name, batch_size, xla=xla, precision=precision,
                                            input_pipeline=input_pipeline, threads=threads, reference=reference)
        log(f"timing {', '.join(cases)} ...")
        for name, summary in timing.interleaved(cases, windows=windows, min_seconds=min_seconds).items():
            result["cases"][name] = _flops(summary, flops_per_image, peak["gflops"])
        _ratios(result, part)
    return result


def format_table(result):
    """Plain-text lines of one result."""
    lines = [f"{result['model']}, batch {result['batch_size']}, backend {result['backend']}, "
             f"settings {result['settings']}, matmul peak {result['peak']['gflops']:.0f} GFLOP/s "
             f"({result['peak']['dtype']}), on {result['device']}"]
    for name, case in result["cases"].items():
        lines.append(f"  {name:28s} {case['images_per_second']:9.2f} img/s (min {case['images_per_second_min']:.2f}, "
                     f"max {case['images_per_second_max']:.2f})  {case['gflops']:7.1f} GFLOP/s  "
                     f"{100 * case['fraction_of_peak']:5.1f}% of peak  {1000 * case['seconds_per_call']:8.1f} ms/call")
    for name, ratio in result["ratios"].items():
        lines.append(f"  ratio {name}: {ratio:.2f}")
    if result.get("note"):
        lines.append(f"  note: {result['note']}")
    return lines
