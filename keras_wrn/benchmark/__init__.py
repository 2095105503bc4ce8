"""Throughput benchmarks: keras-wrn's training step, inference and exported
formats against the paper's official PyTorch code and the machine's measured
matmul peak. TensorFlow (and torch, for the reference) are imported inside."""

from keras_wrn._lazy import lazy_exports

_EXPORTS = {
    "PARTS": "run",
    "format_table": "run",
    "run_benchmark": "run",
    "SETTINGS": "settings",
    "format_settings": "settings",
    "run_settings": "settings",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
