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

os.environ.setdefault("KERAS_BACKEND", "jax")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="CIFAR-10 image folders, or a .tar.gz of them")
    parser.add_argument("--model", default="wrn-16-8")
    parser.add_argument("--out", required=True, help="the run folder (resumed if it holds this run)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--time-budget", type=float, help="minutes for the training, compile included")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from keras_wrn import data
    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.benchmark.budget import epochs_in_budget
    from keras_wrn.training.schedules import scaled_boundaries
    from keras_wrn.training.trainer import train

    config = TrainConfig.from_preset(
        "cifar10", model=args.model, data_dir=args.data, run_dir=args.out, epochs=args.epochs,
        lr_boundaries=scaled_boundaries(args.epochs), batch_size=args.batch_size, precision=args.precision,
        dropout_rate=args.dropout, seed=args.seed)
    started = run_folder.path(args.out, run_folder.CONFIG)
    if os.path.exists(started):  # resuming: the epochs the budget gave the first time
        epochs = TrainConfig.load(started).epochs
    elif args.time_budget:
        epochs, _ = epochs_in_budget(config, data.get_dataset_spec("cifar10"), 60 * args.time_budget,
                                     images_per_epoch=50_000)  # CIFAR-10's training set
    else:
        epochs = args.epochs
    result = train(dataclasses.replace(config, epochs=epochs, lr_boundaries=scaled_boundaries(epochs)))
    print(f"done: {result.epochs} epochs, test accuracy {100 * (1 - result.test_error):.2f}%", flush=True)


if __name__ == "__main__":
    main()
