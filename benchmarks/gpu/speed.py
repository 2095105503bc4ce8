"""GPU job `speed`: keras-wrn's GPU training route against the paper's
functional PyTorch WRN, interleaved, with the bf16 matrix-product peak
measured by the same run.

    python3 benchmarks/gpu/speed.py --budget 170 --out $OUT    # on the lent GPU, via pack.py's command

Cases per model (WRN-28-10 and WRN-16-8 at batch 128 by default):
- `keras_train`: the Keras fit trainer's compiled step under JAX
  (`keras_wrn.training.fit.build_fit_model`: the paper's augmentation, TorchSGD,
  mixed_bfloat16, XLA), from host memory, as `keras-wrn train` runs it;
- `keras_infer`: the network's compiled forward pass (`predict_on_batch`);
- `torch_eager_train`, `torch_eager_infer`: the official functional WRN
  (`keras_wrn.benchmark.torch_reference`), channels_last, bf16 autocast;
- `torch_compiled_train`, `torch_compiled_infer`: the same under `torch.compile`.
The PyTorch cases run in a worker process (`keras_wrn.benchmark.timing`, as
the CPU benchmarks: torch's libraries and JAX's do not share a process
safely). Each case is warmed up (compiled), then timed in windows taken in
turn across the cases, medians with min and max. Writes `gpu-speed-MODEL-bBATCH.json` per model
(the form `benchmarks/run_all.py` renders in docs/benchmarks.md) and `log.txt`.
A case that does not fit the budget is skipped and named in the JSON.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402

kit.bootstrap()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # PyTorch shares the GPU


def matmul_peak(size, repeats=10):
    """Median TFLOP/s of `size`^3 bf16 matrix products on random data, through JAX."""
    import jax
    import jax.numpy as jnp

    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.random.normal(key, (size, size), jnp.bfloat16) for key in (ka, kb))
    product = jax.jit(lambda x, y: x @ y)
    product(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


class KerasCases:
    """keras-wrn's training step (one `fit` call of `steps` steps) and forward
    pass (`steps` calls of `predict_on_batch`), on random uint8 pixels."""

    def __init__(self, model, batch_size, precision, steps):
        import numpy as np

        from keras_wrn import data
        from keras_wrn.training.config import TrainConfig
        from keras_wrn.data.feeds import ShuffledBatches
        from keras_wrn.training.fit import build_fit_model

        spec = data.get_dataset_spec("cifar10")
        config = TrainConfig.from_preset("cifar10", model=model, batch_size=batch_size, precision=precision, xla=True)
        self.trainer, self.net = build_fit_model(config, spec, steps_per_epoch=1000)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (batch_size * steps, 32, 32, 3), dtype="uint8")
        self.batches = ShuffledBatches(images, rng.integers(0, 10, len(images)).astype("int32"), batch_size)
        self.batch = (images[:batch_size].astype("float32") - 120.0) / 64.0
        self.steps = steps

    def train(self):
        history = self.trainer.fit(self.batches, epochs=1, verbose=0)
        float(history.history["loss"][-1])  # the steps have finished

    def infer(self):
        import numpy as np

        for _ in range(self.steps):
            out = self.net.predict_on_batch(self.batch)
        np.asarray(out)


def measure_model(model, args, budget, out, peak, reserve=0.0):
    """The cases of one model, timed in windows taken in turn; `reserve`
    seconds are kept for the models after it (the compiled PyTorch cases are
    left out first). The PyTorch cases run in a worker process
    (`keras_wrn.benchmark.timing.WorkerCase`): torch's libraries and JAX's do
    not share one process safely."""
    import jax

    from keras_wrn.benchmark.timing import LocalCase, WorkerCase
    from keras_wrn.models import registry

    spec = registry.get_model_spec(model)
    depth, k = spec.kwargs["depth"], spec.kwargs["k"]
    device = "cuda" if jax.devices()[0].platform == "gpu" else "cpu"
    cases, compile_seconds = {}, {}

    def prepare(name, estimate, build, keep=0.0):
        if not budget.fits(estimate + keep, f"{name} (compile and warm-up)"):
            return
        started = time.perf_counter()
        case = build()
        case.warmup(2)  # compiles
        cases[name] = case
        compile_seconds[name] = round(time.perf_counter() - started, 1)
        out.log(f"{model} {name}: ready after {compile_seconds[name]} s")

    keras = []

    def keras_case(kind):
        def build():
            if not keras:
                keras.append(KerasCases(model, args.batch_size, "mixed_bfloat16", args.steps))
            return LocalCase(getattr(keras[0], kind), args.batch_size * args.steps)
        return build

    def torch_case(kind, **options):
        def build():
            return WorkerCase(kind=kind, depth=depth, k=k, num_classes=10, batch_size=args.batch_size,
                              options={"device": device, "autocast": "bfloat16", "channels_last": True, **options})
        return build

    timing = 3 * args.windows * args.window_seconds * 6  # every case's windows
    prepare("keras_train", args.compile_estimate, keras_case("train"))
    prepare("keras_infer", 10, keras_case("infer"))
    prepare("torch_eager_train", 20, torch_case("train"))
    prepare("torch_eager_infer", 10, torch_case("infer"))
    prepare("torch_compiled_train", 2 * args.compile_estimate, torch_case("train", compile=True), keep=reserve + timing)
    prepare("torch_compiled_infer", args.compile_estimate, torch_case("infer", compile=True), keep=reserve + timing)
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
    results = {}
    for name, values in figures.items():
        if not values:
            continue
        passes = 3 if name.endswith("train") else 1  # forward + backward: three times the forward's work
        rate = statistics.median(values)
        results[name] = {"images_per_second": rate, "images_per_second_min": min(values),
                         "images_per_second_max": max(values), "windows": values,
                         "compile_seconds": compile_seconds[name], "tflops": rate * passes * 2 * spec.macs / 1e12}
        results[name]["fraction_of_bf16_peak"] = results[name]["tflops"] / peak
        out.log(f"{model} {name}: {rate:.0f} img/s ({min(values):.0f}-{max(values):.0f}), "
                f"{results[name]['tflops']:.1f} TFLOP/s")
    torch_train = [results[n]["images_per_second"] for n in ("torch_eager_train", "torch_compiled_train")
                   if n in results]
    keras_train = results.get("keras_train", {})
    return {
        "model": model, "batch_size": args.batch_size, "backend": "jax",
        "settings": {"precision": "mixed_bfloat16", "xla": True, "steps_per_window": args.steps,
                     "torch": "channels_last, bf16 autocast, the loss read every step as main.py does"},
        "macs_per_image": spec.macs, "bf16_matmul_peak_tflops": peak,
        "compile_seconds": compile_seconds.get("keras_train"),
        "train_images_per_second": keras_train.get("images_per_second"),
        "train_images_per_second_min": keras_train.get("images_per_second_min"),
        "train_images_per_second_max": keras_train.get("images_per_second_max"),
        "train_tflops": keras_train.get("tflops"), "fraction_of_peak": keras_train.get("fraction_of_bf16_peak"),
        "ratio_to_fastest_torch": keras_train["images_per_second"] / max(torch_train)
        if keras_train and torch_train else None,
        "cases": results,
    }


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
    peak = matmul_peak(args.matmul_size)
    out.log(f"bf16 matrix products through JAX: {peak:.1f} TFLOP/s")
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
