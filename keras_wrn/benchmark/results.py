"""One result schema for every throughput measurement, CPU or GPU: what
`keras-wrn benchmark` (`run.run_benchmark`) and the GPU kit's speed job
(`benchmarks/gpu/speed.py`) write, and the one reader of both
(`read_result`), which also reads the files written before the schema.

    {"schema": SCHEMA, "model", "batch_size", "backend", "settings": {...},
     "device": "what computed (a CPU with its generation, or a GPU)",
     "machine": {...} (CPU) | "driver", ... (GPU),
     "macs_per_image", "peak": {"gflops", "dtype", "by"},
     "cases": {name: {"images_per_second", "images_per_second_min", "images_per_second_max",
                      "gflops", "fraction_of_peak", ...}},
     "ratios": {name: float}, "versions": {...}, "date"}
"""

import json
import statistics

SCHEMA = "keras-wrn-benchmark/2"
CASE_FIELDS = ("images_per_second", "images_per_second_min", "images_per_second_max", "gflops", "fraction_of_peak")


def case_summary(rates, flops_per_image, peak_gflops, **extra):
    """A case's figures from the images/s of its timed windows: the median
    with min and max, achieved GFLOP/s and their fraction of the peak."""
    rate = statistics.median(rates)
    gflops = rate * flops_per_image / 1e9
    return {"images_per_second": rate, "images_per_second_min": min(rates), "images_per_second_max": max(rates),
            "gflops": gflops, "fraction_of_peak": gflops / peak_gflops, **extra}


def read_result(source):
    """A result in the schema, from a path or a loaded dict; results written
    before it (the CPU's `matmul_peak_gflops`, the GPU kit's
    `bf16_matmul_peak_tflops` and per-case TFLOP/s) are brought into it."""
    if not isinstance(source, dict):
        with open(source) as handle:
            source = json.load(handle)
    result = dict(source)
    if result.get("schema") == SCHEMA:
        return result
    if "bf16_matmul_peak_tflops" in result:  # the GPU kit's speed job, before the schema
        peak = 1000 * result.pop("bf16_matmul_peak_tflops")
        result["peak"] = {"gflops": peak, "dtype": "bfloat16", "by": "jax"}
        result["cases"] = {name: {**case, "gflops": 1000 * case.get("tflops", 0.0),
                                  "fraction_of_peak": 1000 * case.get("tflops", 0.0) / peak}
                           for name, case in result.get("cases", {}).items()}
        if not result["cases"] and result.get("train_images_per_second"):
            result["cases"]["keras_train"] = {
                "images_per_second": result["train_images_per_second"],
                "images_per_second_min": result["train_images_per_second_min"],
                "images_per_second_max": result["train_images_per_second_max"],
                "gflops": 1000 * result["train_tflops"], "fraction_of_peak": result["fraction_of_peak"]}
        ratio = result.get("ratio_to_fastest_torch")
        result["ratios"] = {"train_over_fastest_torch": ratio} if ratio else {}
    else:  # keras-wrn benchmark on a CPU, before the schema
        from keras_wrn.benchmark.peak import describe_machine

        result["peak"] = {"gflops": result.pop("matmul_peak_gflops"), "dtype": "float32", "by": "numpy"}
        result["device"] = describe_machine(result["machine"])
    result["schema"] = SCHEMA
    return result
