"""The machine's measured FP32 limit: an FMA-bound matrix multiply
(OpenBLAS through numpy, the fastest GEMM on these CPUs), so achieved
GFLOP/s can be stated as a fraction of what the hardware delivers."""

import os
import time


def matmul_peak_gflops(size=2048, repeats=10):
    """Best GFLOP/s of `size`^3 float32 matrix multiplies (2 n^3 FLOPs each)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: thread pool, page faults
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def jax_matmul_peak_gflops(size=8192, dtype="bfloat16", repeats=10):
    """Median GFLOP/s of `size`^3 matrix products of `dtype` on random data,
    through JAX on its default device (a GPU's bf16 tensor cores)."""
    import jax
    import jax.numpy as jnp

    first, second = jax.random.split(jax.random.PRNGKey(0))
    a, b = (jax.random.normal(key, (size, size), getattr(jnp, dtype)) for key in (first, second))
    product = jax.jit(lambda x, y: x @ y)
    product(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    times.sort()
    return 2 * size**3 / times[len(times) // 2] / 1e9


def matmul_peak(dtype="float32", by="numpy", size=None):
    """The schema's `peak` (`benchmark.results`): `{"gflops", "dtype", "by"}`,
    float32 through numpy (the CPU's GEMM) or `dtype` through JAX."""
    if by == "numpy":
        return {"gflops": matmul_peak_gflops(size or 2048), "dtype": "float32", "by": "numpy"}
    return {"gflops": jax_matmul_peak_gflops(size or 8192, dtype), "dtype": dtype, "by": "jax"}


def machine():
    """What the figures were measured on: the CPU named with its generation
    and the instruction sets that matter (`keras_wrn.provenance`)."""
    import platform

    from keras_wrn.provenance import cpu

    found = cpu()
    return {"cpu": found.model, "description": found.describe(), "microarchitecture": found.microarchitecture,
            "features": list(found.features), "cores": os.cpu_count(), "python": platform.python_version()}


def describe_machine(machine):
    """The CPU of a result, also of results recorded before CPUs were identified."""
    return machine.get("description") or f"{machine['cpu']} (generation not recorded), {machine['cores']} cores"
