"""Whether a run's step compiles with XLA, measured on the CPU at hand.

XLA or TensorFlow's graph with oneDNN kernels: which is faster depends on the
CPU, not only on the model. On an AMD Zen 3 (AVX2) XLA trained WRN-28-10
1.14x faster; on a Zen 4 (AVX-512, AVX512_BF16, VNNI) the digits default ran
4x faster without it (docs/benchmarks.md). So when the user has not said
`--xla` or `--no-xla` and the step runs on the CPU, the trainer times a few
steps both ways, on throwaway copies of the model and optimizer, before the
run seeds its random numbers, and keeps the faster. The two figures are
printed and written into the run's config.json, and cached per CPU
model, instruction sets, TensorFlow version, model, input, batch and
precision in `KERAS_WRN_CACHE` (default `~/.cache/keras-wrn`), so the probe
(10-40 s, mostly XLA's compilation) is paid once per kind of machine.

GPUs and TPUs compile (XLA is their fast path); smoke runs do not measure
(they use a cached choice, or compile).
"""

import datetime
import json
import os
import statistics
import time

from keras_wrn import files
from keras_wrn.cache import cache_dir
from keras_wrn.provenance import cpu, package_versions

CACHE_FILE = "xla-choices.json"


def cache_path():
    return cache_dir(CACHE_FILE)


def _read_cache(path):
    try:
        with open(path) as handle:
            cache = json.load(handle)
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: measure again and rewrite it


def choice_key(config, spec, batch_size):
    """What a cached choice holds for: the CPU, the versions that make the
    step (a new keras-wrn, Keras or TensorFlow measures again) and the run's
    shape of work."""
    import tensorflow as tf

    from keras_wrn._version import __version__

    return " | ".join([
        cpu().key(), f"keras_wrn {__version__}", f"keras {package_versions()['keras']}",
        f"tensorflow {tf.__version__}", config.model,
        f"{spec.image_size}x{spec.image_size}x{spec.channels}", f"batch {batch_size}", config.precision,
        "zca" if config.zca else "mean/std",
    ])


def choose_xla(config, spec, strategy, batch_size, *, log=print):
    """`(xla, record)`: the measured (or cached) choice for a CPU step, and
    what config.json records of it. Called only when the user left XLA to
    the default and it can run."""
    path = cache_path()
    key = choice_key(config, spec, batch_size)
    cached = _read_cache(path).get(key)
    if cached is not None:
        record = {**cached, "source": f"cached in {path}"}
    elif config.smoke:
        return True, {"source": "default (smoke runs do not measure; nothing cached for this CPU)"}
    else:
        log(f"Measuring the training step with and without XLA on this CPU "
            f"({cpu().describe()}): once per kind of machine.")
        rates = measure_step_rates(config, spec, strategy, batch_size)
        record = {"xla": rates[True] > rates[False], "xla_images_per_second": round(rates[True], 1),
                  "graph_images_per_second": round(rates[False], 1), "cpu": cpu().describe(),
                  "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        try:
            cache = _read_cache(path)
            cache[key] = record
            os.makedirs(os.path.dirname(path), exist_ok=True)
            files.write_json(path, cache)
            record = {**record, "source": f"measured, cached in {path}"}
        except OSError as error:  # a read-only home must not stop the run
            record = {**record, "source": f"measured (not cached: {error})"}
    log(f"XLA {'on' if record['xla'] else 'off'}: the step ran at {record['xla_images_per_second']:g} img/s "
        f"with XLA and {record['graph_images_per_second']:g} img/s without ({record['source']}; "
        f"--xla or --no-xla decides instead).")
    return record["xla"], record


def measure_step_rates(config, spec, strategy, batch_size, *, windows=3, window_seconds=0.75):
    """Images/s of the run's own training step (`steps.make_train_step`:
    augmentation, forward, loss, backward, TorchSGD) compiled and not, on
    random pixels, in interleaved timing windows: `{True: xla, False: graph}`."""
    import numpy as np
    import tensorflow as tf

    from keras_wrn.training.sharpness import Sharpness
    from keras_wrn.training.steps import build_training_objects, make_train_step

    size, channels = spec.image_size, spec.channels
    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (batch_size, size, size, channels)), tf.uint8)
    labels = tf.constant(rng.integers(0, spec.num_classes, batch_size), tf.int32)
    zca = (np.zeros(size * size * channels, "float32"), np.eye(size * size * channels, dtype="float32")) \
        if config.zca else None
    steps = {}
    for xla in (False, True):
        model, preprocess, optimizer, _ = build_training_objects(config, spec, strategy, 1, zca=zca)
        step = make_train_step(strategy, model, preprocess, optimizer, global_batch_size=batch_size,
                               precision=config.precision, xla=xla, label_smoothing=config.label_smoothing,
                               sharpness=Sharpness.from_config(config))
        step(images, labels)  # trace (and compile)
        step(images, labels)
        steps[xla] = step
    rates = {True: [], False: []}
    for _ in range(windows):
        for xla, step in steps.items():
            count, start = 0, time.perf_counter()
            while count < 2 or time.perf_counter() - start < window_seconds:
                float(step(images, labels)[0])
                count += 1
            rates[xla].append(count * batch_size / (time.perf_counter() - start))
    return {xla: statistics.median(values) for xla, values in rates.items()}
