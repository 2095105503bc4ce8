"""GPU row of the benchmark table, under JAX (the lent GPU machines have no
TensorFlow): training images/s of `keras_wrn.training.fit` (Keras
`fit`, one XLA-compiled step per batch, mixed bfloat16, the paper's
augmentation in the step) and its fraction of the measured bf16 matmul
throughput of the same GPU, in the same process.

    KERAS_BACKEND=jax python benchmarks/gpu_jax.py --model wrn-28-10 --batch-size 128 \\
        --json-out benchmarks/results/gpu-wrn-28-10-b128-jax.json
"""

import argparse
import datetime
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")


def bf16_matmul_peak_tflops(size=8192, repeats=20):
    """Median TFLOP/s of `size`^3 bf16 matrix products on random data (2 n^3 FLOPs each)."""
    import jax
    import jax.numpy as jnp

    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (size, size), jnp.bfloat16)
    b = jax.random.normal(kb, (size, size), jnp.bfloat16)
    matmul = jax.jit(lambda x, y: x @ y)
    matmul(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e12


def training_images_per_second(model_name, batch_size, precision, windows, steps):
    """(median, min, max) images/s over `windows` fit() calls of `steps` steps, after a compiling one."""
    import numpy as np

    from keras_wrn import data
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.fit import ShuffledBatches, build_fit_model

    spec = data.get_dataset_spec("cifar10")
    config = TrainConfig.from_preset("cifar10", model=model_name, batch_size=batch_size, precision=precision,
                                     xla=True)
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=1000)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch_size * steps, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, batch_size * steps).astype("int32")
    batches = ShuffledBatches(images, labels, batch_size)
    started = time.perf_counter()
    trainer.fit(batches, epochs=1, verbose=0)
    compile_seconds = time.perf_counter() - started
    rates = []
    for _ in range(windows):
        started = time.perf_counter()
        history = trainer.fit(batches, epochs=1, verbose=0)
        float(history.history["loss"][-1])  # the epoch's steps have finished
        rates.append(batch_size * steps / (time.perf_counter() - started))
    return statistics.median(rates), min(rates), max(rates), compile_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wrn-28-10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--json-out")
    args = parser.parse_args()

    import jax
    import keras

    from keras_wrn.models import registry
    from keras_wrn.provenance import package_versions

    macs = registry.get_model_spec(args.model).macs
    peak = bf16_matmul_peak_tflops()
    median, low, high, compile_seconds = training_images_per_second(
        args.model, args.batch_size, args.precision, args.windows, args.steps)
    tflops = median * 3 * 2 * macs / 1e12  # forward + backward (twice the forward)
    result = {
        "model": args.model, "batch_size": args.batch_size, "backend": keras.backend.backend(),
        "settings": {"precision": args.precision, "xla": True, "steps_per_window": args.steps},
        "device": jax.devices()[0].device_kind, "macs_per_image": macs,
        "bf16_matmul_peak_tflops": peak, "compile_seconds": compile_seconds,
        "train_images_per_second": median, "train_images_per_second_min": low,
        "train_images_per_second_max": high, "train_tflops": tflops, "fraction_of_peak": tflops / peak,
        "versions": package_versions("jax", "jaxlib"), "date": datetime.date.today().isoformat(),
    }
    print(f"{args.model} batch {args.batch_size} {args.precision} on {result['device']}: "
          f"{median:.0f} img/s (min {low:.0f}, max {high:.0f}), {tflops:.1f} TFLOP/s = "
          f"{100 * tflops / peak:.1f}% of the {peak:.0f} TFLOP/s bf16 matmul", flush=True)
    if args.json_out:
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
