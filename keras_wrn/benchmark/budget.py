"""How many epochs fit in a time budget: a probe of the compiled training
step, for runs on a machine lent for a fixed time (the GPU kit's weights
job, examples/train_cifar10_in_memory.py)."""

import time

import numpy as np


def epochs_in_budget(config, spec, seconds, images_per_epoch, *, steps=60, log=print):
    """How many epochs of `config` fit in `seconds` (at most `config.epochs`),
    from the images/s of its compiled step measured on a throwaway model and
    random pixels (a compile, and the test passes, spared): the time budget of
    a run on a lent GPU. Returns `(epochs, images_per_second)`."""
    from keras_wrn.data.feeds import ShuffledBatches
    from keras_wrn.training.fit import build_fit_model

    started = time.perf_counter()
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=1000)
    size, channels = spec.image_size, spec.channels
    images = np.random.default_rng(0).integers(0, 256, (config.batch_size * steps, size, size, channels),
                                               dtype="uint8")
    batches = ShuffledBatches(images, np.zeros(len(images), "int32"), config.batch_size)
    trainer.fit(batches, epochs=1, verbose=0)  # compiles
    compile_seconds = time.perf_counter() - started
    timed = time.perf_counter()
    trainer.fit(batches, epochs=1, verbose=0)
    rate = len(images) / (time.perf_counter() - timed)
    left = seconds - (time.perf_counter() - started) - 1.5 * compile_seconds - 30
    epochs = max(1, min(config.epochs, int(left * rate / (1.03 * images_per_epoch))))
    log(f"probe: {rate:.0f} img/s after a {compile_seconds:.0f} s compile -> {epochs} epochs")
    return epochs, rate
