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
