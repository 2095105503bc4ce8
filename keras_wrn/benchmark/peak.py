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
    """What the figures were measured on."""
    import platform

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version()}
