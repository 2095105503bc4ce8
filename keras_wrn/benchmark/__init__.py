"""Throughput benchmarks: keras-wrn's training step, inference and exported
formats against the paper's official PyTorch code and the machine's measured
matmul peak. TensorFlow (and torch, for the reference) are imported inside."""

from keras_wrn.benchmark.run import PARTS, format_table, run_benchmark
from keras_wrn.benchmark.settings import SETTINGS, format_settings, run_settings
