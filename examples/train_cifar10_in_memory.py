"""Train a WRN on CIFAR-10 with the paper's recipe under JAX (or PyTorch), in
a time budget: the route that trained the published WRN-16-8 on a GPU
machine without TensorFlow.

    KERAS_BACKEND=jax python examples/train_cifar10_in_memory.py \\
        --data ../shared/data/cifar10-jpeg.tar.gz --model wrn-16-8 --out runs/cifar10-wrn-16-8 --time-budget 14

It is `keras-wrn train --dataset cifar10 --data-dir DATA --model MODEL
--run-dir OUT --precision mixed_bfloat16` (the Keras `fit` trainer, with its
run folder, lock, resume and metrics), plus one thing the command does not
do: with `--time-budget MINUTES`, a 60-step probe of the compiled step on
random pixels measures images/s first, and the epochs (at most `--epochs`)
are what fits the budget, the rate drops at the paper's fractions of them.
`--data` is CIFAR-10 as image files: a folder with train/ and test/ (one
folder per class) or a .tar.gz of one.
"""

import argparse
import dataclasses
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

PAPER_EPOCHS, PAPER_BOUNDARIES = 200, (60, 120, 160)


def scaled_boundaries(epochs):
    """The paper's rate drops (60, 120, 160 of 200) at the same fractions of `epochs`."""
    return tuple(sorted({round(b * epochs / PAPER_EPOCHS) for b in PAPER_BOUNDARIES} - {0, 1}))


def epochs_in_budget(config, minutes, images_per_epoch, steps=60):
    """How many epochs of `config` fit in `minutes`, from the images/s of its
    compiled step on a throwaway model (a compile and the test passes spared)."""
    import numpy as np

    from keras_wrn import data
    from keras_wrn.training.fit import ShuffledBatches, build_fit_model

    started = time.perf_counter()
    trainer, _ = build_fit_model(config, data.get_dataset_spec(config.dataset), steps_per_epoch=1000)
    images = np.random.default_rng(0).integers(0, 256, (config.batch_size * steps, 32, 32, 3), dtype="uint8")
    batches = ShuffledBatches(images, np.zeros(len(images), "int32"), config.batch_size)
    trainer.fit(batches, epochs=1, verbose=0)  # compiles
    compile_seconds = time.perf_counter() - started
    timed = time.perf_counter()
    trainer.fit(batches, epochs=1, verbose=0)
    rate = len(images) / (time.perf_counter() - timed)
    left = 60 * minutes - (time.perf_counter() - started) - 1.5 * compile_seconds - 30
    epochs = max(1, min(config.epochs, int(left * rate / (1.03 * images_per_epoch))))
    print(f"probe: {rate:.0f} img/s after a {compile_seconds:.0f} s compile -> {epochs} epochs", flush=True)
    return epochs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 image folders, or a .tar.gz of them")
    parser.add_argument("--model", default="wrn-16-8")
    parser.add_argument("--out", required=True, help="the run folder (resumed if it holds this run)")
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS)
    parser.add_argument("--time-budget", type=float, help="minutes for the training, compile included")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.trainer import train

    config = TrainConfig.from_preset(
        "cifar10", model=args.model, data_dir=args.data, run_dir=args.out, epochs=args.epochs,
        lr_boundaries=scaled_boundaries(args.epochs), batch_size=args.batch_size, precision=args.precision,
        dropout_rate=args.dropout, seed=args.seed)
    started = run_folder.path(args.out, run_folder.CONFIG)
    if os.path.exists(started):  # resuming: the epochs the budget gave the first time
        epochs = TrainConfig.load(started).epochs
    elif args.time_budget:
        epochs = epochs_in_budget(config, args.time_budget, images_per_epoch=50_000)  # CIFAR-10's training set
    else:
        epochs = args.epochs
    result = train(dataclasses.replace(config, epochs=epochs, lr_boundaries=scaled_boundaries(epochs)))
    print(f"done: {result.epochs} epochs, test accuracy {100 * (1 - result.test_error):.2f}%", flush=True)


if __name__ == "__main__":
    main()
