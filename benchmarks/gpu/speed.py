"""GPU job `speed`: keras-wrn's GPU training route against the paper's
functional PyTorch WRN, interleaved, with the bf16 matrix-product peak
measured by the same run.

    python3 benchmarks/gpu/speed.py --budget 170 --out $OUT    # on the lent GPU, via pack.py's command

Cases per model (WRN-28-10 and WRN-16-8 at batch 128 by default):
- `keras_train`, `keras_infer`: `keras_wrn.benchmark.keras_cases.fit_cases`,
  the Keras fit trainer's compiled step under JAX (the paper's augmentation,
  TorchSGD, mixed_bfloat16, XLA) from host memory, as `keras-wrn train` runs
  it, and the network's compiled forward pass (`predict_on_batch`);
- `torch_eager_train`, `torch_eager_infer`: the official functional WRN
  (`keras_wrn.benchmark.torch_reference`), channels_last, bf16 autocast;
- `torch_compiled_train`, `torch_compiled_infer`: the same under `torch.compile`.
The PyTorch cases run in a worker process (`keras_wrn.benchmark.timing`, as
the CPU benchmarks: torch's libraries and JAX's do not share a process
safely). Each case is warmed up (compiled), then timed in windows taken in
turn across the cases, medians with min and max. Writes `gpu-speed-MODEL-bBATCH.json` per model
in the schema of `keras_wrn.benchmark.results` (that of `keras-wrn benchmark`, which
`benchmarks/run_all.py` renders in docs/benchmarks.md) and `log.txt`.
A case that does not fit the budget is skipped and named in the JSON.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402

kit.bootstrap()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # PyTorch shares the GPU


def prepare_cases(model, args, budget, out, reserve):
    """keras-wrn's cases (`keras_cases.fit_cases`, built once for both) and
    the official code's (`timing.WorkerCase`, in a worker process: torch's
    libraries and JAX's do not share one safely), each compiled and warmed
    up while the budget holds it and `reserve` seconds for the models after
    this one (the compiled PyTorch cases are left out first). Returns
    `(cases, compile_seconds)`."""
    import jax

    from keras_wrn.benchmark.keras_cases import fit_cases
    from keras_wrn.benchmark.timing import LocalCase, WorkerCase
    from keras_wrn.models import registry

    spec = registry.get_model_spec(model)
    device = "cuda" if jax.devices()[0].platform == "gpu" else "cpu"
    images, keras_steps, cases, compile_seconds = args.batch_size * args.steps, [], {}, {}

    def keras_case(index):
        if not keras_steps:
            keras_steps.extend(fit_cases(model, args.batch_size, precision="mixed_bfloat16", steps=args.steps))
        return LocalCase(keras_steps[index], images)

    def torch_case(kind, **options):
        return WorkerCase(kind=kind, depth=spec.kwargs["depth"], k=spec.kwargs["k"], num_classes=10,
                          batch_size=args.batch_size,
                          options={"device": device, "autocast": "bfloat16", "channels_last": True, **options})

    timed = 3 * args.windows * args.window_seconds * 6  # every case's windows
    plan = [("keras_train", args.compile_estimate, lambda: keras_case(0), 0.0),
            ("keras_infer", 10, lambda: keras_case(1), 0.0),
            ("torch_eager_train", 20, lambda: torch_case("train"), 0.0),
            ("torch_eager_infer", 10, lambda: torch_case("infer"), 0.0),
            ("torch_compiled_train", 2 * args.compile_estimate, lambda: torch_case("train", compile=True),
             reserve + timed),
            ("torch_compiled_infer", args.compile_estimate, lambda: torch_case("infer", compile=True), reserve + timed)]
    for name, estimate, build, keep in plan:
        if not budget.fits(estimate + keep, f"{name} (compile and warm-up)"):
            continue
        started = time.perf_counter()
        cases[name] = build()
        cases[name].warmup(2)  # compiles
        compile_seconds[name] = round(time.perf_counter() - started, 1)
        out.log(f"{model} {name}: ready after {compile_seconds[name]} s")
    return cases, compile_seconds


def time_windows(cases, args, budget, reserve):
    """Each case's images/s per window, windows taken in turn across the
    cases while the budget holds them; closes the cases."""
    figures = {name: [] for name in cases}
    try:
        for window in range(args.windows):
            for name, case in cases.items():
                if figures[name] and not budget.fits(2 * args.window_seconds + reserve, f"{name} window {window + 1}"):
                    continue
                figures[name].append(case.window(args.window_seconds)[0])
    finally:
        for case in cases.values():
            case.close()
    return figures


def measure_model(model, args, budget, out, peak, reserve=0.0):
    """One model's result in the benchmark schema (`keras_wrn.benchmark.results`):
    its cases timed in interleaved windows against `peak` (the schema's
    `{"gflops", "dtype", "by"}`)."""
    from keras_wrn.benchmark.results import SCHEMA, case_summary
    from keras_wrn.models import registry

    macs = registry.get_model_spec(model).macs
    cases, compile_seconds = prepare_cases(model, args, budget, out, reserve)
    summaries = {}
    for name, rates in time_windows(cases, args, budget, reserve).items():
        if not rates:
            continue
        passes = 3 if name.endswith("train") else 1  # forward + backward: three times the forward's work
        summaries[name] = case_summary(rates, passes * 2 * macs, peak["gflops"], windows=rates,
                                       compile_seconds=compile_seconds[name])
        out.log(f"{model} {name}: {summaries[name]['images_per_second']:.0f} img/s ({min(rates):.0f}-{max(rates):.0f}),"
                f" {summaries[name]['gflops'] / 1000:.1f} TFLOP/s")
    torch_train = [summaries[n]["images_per_second"] for n in ("torch_eager_train", "torch_compiled_train")
                   if n in summaries]
    ratios = {"train_over_fastest_torch": summaries["keras_train"]["images_per_second"] / max(torch_train)} \
        if "keras_train" in summaries and torch_train else {}
    return {"schema": SCHEMA, "model": model, "batch_size": args.batch_size, "backend": "jax",
            "settings": {"precision": "mixed_bfloat16", "xla": True, "steps_per_window": args.steps,
                         "torch": "channels_last, bf16 autocast, the loss read every step as main.py does"},
            "macs_per_image": macs, "peak": peak, "cases": summaries, "ratios": ratios}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=170, help="seconds for the whole job, results included")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="the folder brought back ($OUT)")
    parser.add_argument("--models", default="wrn-28-10,wrn-16-8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="keras-wrn's steps per fit call")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--window-seconds", type=float, default=2.0, help="shortest timed window")
    parser.add_argument("--matmul-size", type=int, default=8192)
    parser.add_argument("--compile-estimate", type=float, default=40, help="seconds one compile may take")
    args = parser.parse_args()
    if not args.out:
        parser.error("--out (or OUT) is required")
    budget, out = kit.Budget(args.budget), kit.Output(args.out)
    environment = kit.environment()
    out.log(f"speed on {environment['device']} (driver {environment['driver']}), budget {args.budget:g} s")
    from keras_wrn.benchmark.peak import matmul_peak

    peak = matmul_peak("bfloat16", by="jax", size=args.matmul_size)
    out.log(f"bf16 matrix products through JAX: {peak['gflops'] / 1000:.1f} TFLOP/s")
    models = args.models.split(",")
    for index, model in enumerate(models):
        if not budget.fits(20, f"{model}"):
            continue
        base = args.compile_estimate + 45  # the next model's keras and eager cases, timed
        result = measure_model(model, args, budget, out, peak, reserve=base * (len(models) - index - 1))
        result.update(environment, skipped=list(budget.skipped), budget_seconds=args.budget,
                      spent_seconds=round(budget.spent(), 1))
        out.write_json(f"gpu-speed-{model}-b{args.batch_size}.json", result)
    out.log(f"done in {budget.spent():.0f} s; skipped: {budget.skipped or 'nothing'}")


if __name__ == "__main__":
    main()
