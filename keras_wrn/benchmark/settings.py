"""The settings sweep: keras-wrn's training step under each candidate setting
(XLA, oneDNN, thread pools, precision, input pipeline, data format, Keras
backend) and the official PyTorch code, each in its own process, interleaved
window by window; images/s and the ratio to the default. The defaults of
`keras-wrn train` are the fastest settings this finds that leave results
unchanged (README, Benchmarks)."""

import dataclasses
import datetime

from keras_wrn.benchmark import timing
from keras_wrn.benchmark.peak import describe_machine, machine, matmul_peak
from keras_wrn.benchmark.results import SCHEMA
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.provenance import package_versions


@dataclasses.dataclass(frozen=True)
class Setting:
    description: str
    kind: str = "keras_train"  # a kind of `keras_wrn.benchmark.worker.build`
    options: dict = dataclasses.field(default_factory=dict)
    env: dict = dataclasses.field(default_factory=dict)
    inter_op_threads: int | None = None


TF = {"KERAS_BACKEND": "tensorflow"}
SETTINGS = {
    "default": Setting("trainer step, XLA (the default)", options={"xla": True}, env=TF),
    "no-xla": Setting("trainer step, TF graph with oneDNN kernels", options={"xla": False}, env=TF),
    "no-xla-no-onednn": Setting("trainer step, TF graph with Eigen kernels (TF_ENABLE_ONEDNN_OPTS=0)",
                                options={"xla": False}, env={**TF, "TF_ENABLE_ONEDNN_OPTS": "0"}),
    "inter-op-1": Setting("trainer step, XLA, one inter-op thread", options={"xla": True}, env=TF,
                          inter_op_threads=1),
    "no-xla-inter-op-1": Setting("trainer step, TF graph with oneDNN kernels, one inter-op thread",
                                 options={"xla": False}, env=TF, inter_op_threads=1),
    "no-xla-mixed-bfloat16-inter-op-1": Setting(
        "trainer step, TF graph with oneDNN kernels, mixed_bfloat16, one inter-op thread",
        options={"xla": False, "precision": "mixed_bfloat16"}, env=TF, inter_op_threads=1),
    "mixed-bfloat16": Setting("trainer step, XLA, mixed_bfloat16", options={"xla": True,
                              "precision": "mixed_bfloat16"}, env=TF),
    "no-xla-mixed-bfloat16": Setting("trainer step, TF graph with oneDNN kernels, mixed_bfloat16",
                                     options={"xla": False, "precision": "mixed_bfloat16"}, env=TF),
    "input-pipeline": Setting("trainer step, XLA, fed by keras_wrn.data (tf.data)",
                              options={"xla": True, "input_pipeline": True}, env=TF),
    "jax-fit": Setting("Keras fit route on JAX (fit.build_fit_model, jit)", kind="keras_fit",
                       env={"KERAS_BACKEND": "jax"}),
    "model-channels-last": Setting("trainer step without augmentation, XLA, channels_last",
                                   kind="keras_model", options={"data_format": "channels_last"}, env=TF),
    "model-channels-first": Setting("trainer step without augmentation, XLA, channels_first",
                                    kind="keras_model", options={"data_format": "channels_first"}, env=TF),
    "reference": Setting("the paper's official PyTorch code", kind="train"),
    "reference-bfloat16": Setting("the paper's official PyTorch code, bf16 autocast", kind="train",
                                  options={"autocast": "bfloat16"}),
}


def run_settings(model_name, batch_size, *, names=None, windows=5, min_seconds=2.0, threads=None,
                 log=print):
    """Times `names` (default: every entry of SETTINGS) for `model_name` at
    `batch_size`; returns a JSON-able dict (cases with images/s, GFLOP/s,
    fraction of the matmul peak and the ratio to "default")."""
    import os

    from keras_wrn.benchmark.run import torch_available
    from keras_wrn.models import registry

    spec = registry.get_model_spec(model_name)
    if spec.family != "cifar":
        raise InvalidArgumentError(f"The settings sweep times the CIFAR models (32x32 inputs); {model_name} is an "
                         f"ImageNet model.")
    names = list(names or SETTINGS)
    unknown = [name for name in names if name not in SETTINGS]
    if unknown:
        raise InvalidArgumentError(f"Unknown settings {unknown}; choose from {', '.join(SETTINGS)}.")
    threads = threads or os.cpu_count()
    note = None
    references = [name for name in names if SETTINGS[name].kind in ("train", "infer")]
    if references and not torch_available():
        names = [name for name in names if name not in references]
        note = "torch is not installed: no reference timings (pip install 'keras-wrn[torch]')"
    log(f"measuring the matmul peak ({threads} threads)...")
    found, where = matmul_peak(), machine()
    peak = found["gflops"]
    cases = _start_cases(names, spec, model_name, batch_size, threads, log)
    log(f"timing {', '.join(names)} ...")
    measured = timing.interleaved(cases, windows=windows, min_seconds=min_seconds)
    flops_per_image = 3 * 2 * spec.macs  # forward + backward (twice the forward)
    default_rate = measured["default"]["images_per_second"] if "default" in measured else None
    for name, summary in measured.items():
        summary["description"] = SETTINGS[name].description
        summary["gflops"] = summary["images_per_second"] * flops_per_image / 1e9
        summary["fraction_of_peak"] = summary["gflops"] / peak
        if default_rate:
            summary["ratio_to_default"] = summary["images_per_second"] / default_rate
    result = {
        "schema": SCHEMA, "sweep": "settings", "model": model_name, "batch_size": batch_size, "threads": threads,
        "device": describe_machine(where), "machine": where, "macs_per_image": spec.macs, "peak": found,
        "versions": package_versions("torch", "jax", "numpy"), "date": datetime.date.today().isoformat(),
        "cases": measured,
    }
    if note:
        result["note"] = note
    return result


def _start_cases(names, spec, model_name, batch_size, threads, log):
    """Each setting's case in its worker process (all closed again if one
    cannot start)."""
    from keras_wrn.benchmark.run import reference_case

    cases = {}
    try:
        for name in names:
            setting = SETTINGS[name]
            log(f"starting {name}: {setting.description}")
            if setting.kind in ("train", "infer"):
                cases[name] = reference_case(setting.kind, spec, batch_size, threads, setting.options)
            else:
                cases[name] = timing.WorkerCase(env=setting.env, kind=setting.kind, model=model_name,
                                                batch_size=batch_size, options=setting.options,
                                                inter_op_threads=setting.inter_op_threads)
    except BaseException:
        for case in cases.values():
            case.close()
        raise
    return cases


def format_settings(result):
    """Plain-text lines of one sweep."""
    lines = [f"{result['model']}, batch {result['batch_size']}, training step, {result['threads']} threads, "
             f"matmul peak {result['peak']['gflops']:.0f} GFLOP/s, on {result['device']}"]
    for name, case in result["cases"].items():
        ratio = case.get("ratio_to_default")
        lines.append(f"  {name:22s} {case['images_per_second']:8.2f} img/s (min {case['images_per_second_min']:.2f}, "
                     f"max {case['images_per_second_max']:.2f})  {100 * case['fraction_of_peak']:5.1f}% of peak"
                     + (f"  x{ratio:.2f} of default" if ratio else "") + f"  {case['description']}")
    if result.get("note"):
        lines.append(f"  note: {result['note']}")
    return lines
