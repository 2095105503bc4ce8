"""Timed windows: warm-up, then several windows, reported as median, min and
max images per second. Competing implementations are interleaved window by
window so that machine noise (+-20% on these CPUs) hits them alike.

A case runs in this process (`LocalCase`) or in a worker process
(`WorkerCase`: the torch reference, whose CUDA-build libraries crash when
loaded beside TensorFlow, and settings fixed at process start). Only one
case runs at a time either way.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from keras_wrn.errors import KerasWRNError


def timed_window(function, images_per_call, min_seconds):
    """Runs `function` until `min_seconds` have passed (at least once);
    returns (images per second, seconds per call)."""
    calls, start = 0, time.perf_counter()
    while True:
        function()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return calls * images_per_call / elapsed, elapsed / calls


class LocalCase:
    def __init__(self, function, images_per_call):
        self.function, self.images = function, images_per_call

    def warmup(self, calls):
        for _ in range(calls):
            self.function()

    def window(self, min_seconds):
        return timed_window(self.function, self.images, min_seconds)

    def close(self):
        pass


class WorkerError(KerasWRNError, RuntimeError):
    """A benchmark worker process died or failed."""


class WorkerCase:
    """A case built and timed by `python -m keras_wrn.benchmark.worker`, in
    its own process with `env` added to the environment (by default Keras
    on its torch backend, so that TensorFlow never loads beside torch)."""

    def __init__(self, env=None, **setup):
        self.process = subprocess.Popen([sys.executable, "-m", "keras_wrn.benchmark.worker"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env={**os.environ, "KERAS_BACKEND": "torch", **(env or {})})
        self._ask({"command": "setup", **setup})

    def _ask(self, message):
        """Sends `message`; returns the reply. Lines the libraries print in
        between (oneDNN's verbose trace) are kept in `self.printed`."""
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        self.printed = []
        while (line := self.process.stdout.readline()) and not line.startswith("{"):
            self.printed.append(line.rstrip("\n"))
        if not line:
            raise WorkerError(f"The benchmark worker died (exit code {self.process.wait()}).")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerError(f"The benchmark worker failed: {reply['error']}")
        return reply

    def warmup(self, calls):
        self._ask({"command": "warmup", "calls": calls})

    def window(self, min_seconds):
        reply = self._ask({"command": "window", "min_seconds": min_seconds})
        return reply["rate"], reply["seconds"]

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def interleaved(cases, *, windows=5, warmup_calls=2, min_seconds=2.0):
    """`cases`: {name: LocalCase or WorkerCase}. Returns {name: summary}
    with images/s median/min/max, seconds per call and every window."""
    try:
        for case in cases.values():
            case.warmup(warmup_calls)
        figures = {name: [] for name in cases}
        latencies = {name: [] for name in cases}
        for _ in range(windows):
            for name, case in cases.items():
                rate, seconds = case.window(min_seconds)
                figures[name].append(rate)
                latencies[name].append(seconds)
    finally:
        for case in cases.values():
            case.close()
    return {
        name: {
            "images_per_second": statistics.median(values),
            "images_per_second_min": min(values),
            "images_per_second_max": max(values),
            "seconds_per_call": statistics.median(latencies[name]),
            "windows": values,
        }
        for name, values in figures.items()
    }
