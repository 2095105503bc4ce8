"""Train a WRN on CIFAR-10 from in-memory arrays with the paper's recipe,
under JAX (or PyTorch): the route for a GPU machine without TensorFlow.

    KERAS_BACKEND=jax python examples/train_cifar10_in_memory.py \\
        --data ../shared/data/cifar10-jpeg.tar.gz --model wrn-16-8 --out runs/cifar10-wrn-16-8

`--data` is CIFAR-10 as image files: a folder with train/ and test/ (one
folder per class, sorted into label order) or a .tar.gz of one. The run
folder is a keras-wrn run folder (config.json, metrics.jsonl,
last.weights.h5), so `keras-wrn evaluate RUN --weights last --data-dir DATA`
and `keras-wrn export RUN --weights last ...` read it on any machine.

The recipe is the official one (SGD, Nesterov 0.9, coupled L2 5e-4, batch
128, lr 0.1 x0.2 at 30%/60%/80% of the epochs, flip + reflect-padded crop,
mean/std). `--time-budget MINUTES` compresses it to fit: a 60-step probe of
the compiled step measures images/s, and the epoch count (at most
`--epochs`) is what fits in the budget, with the rate drops at the same
fractions of training.
"""

import argparse
import os
import tarfile
import tempfile
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

PAPER_EPOCHS, PAPER_BOUNDARIES = 200, (60, 120, 160)


def load_cifar_arrays(path, limit=None):
    """(x_train, y_train, x_test, y_test) from an image-folder copy or its .tar.gz."""
    from keras_wrn.data.datasets import read_image_arrays

    if os.path.isfile(path):
        with tempfile.TemporaryDirectory() as tmp:
            with tarfile.open(path) as archive:
                archive.extractall(tmp, filter="data")
            roots = [os.path.join(tmp, entry) for entry in os.listdir(tmp)]
            root = roots[0] if len(roots) == 1 and os.path.isdir(roots[0]) else tmp
            return load_cifar_arrays(root, limit)
    x_train, y_train = read_image_arrays(path, "train", image_size=32)
    x_test, y_test = read_image_arrays(path, "test", image_size=32)
    if limit:
        pick = np.random.default_rng(0).permutation(len(y_train))[:limit]
        x_train, y_train = x_train[pick], y_train[pick]
        x_test, y_test = x_test[:limit], y_test[:limit]
    return x_train, y_train, x_test, y_test


def scaled_boundaries(epochs):
    """The paper's rate drops (60, 120, 160 of 200) at the same fractions of `epochs`."""
    return tuple(sorted({round(b * epochs / PAPER_EPOCHS) for b in PAPER_BOUNDARIES} - {0, 1}))


def probe_images_per_second(config, spec, data, steps=60):
    """Images/s of the compiled training step after compilation, on a throwaway model."""
    from keras_wrn.training.in_memory import ShuffledBatches, build_fit_model

    x_train, y_train = data
    trainer, _ = build_fit_model(config, spec, steps_per_epoch=1000)
    n = config.batch_size * steps
    batches = ShuffledBatches(x_train[:n], y_train[:n], config.batch_size)
    started = time.perf_counter()
    trainer.fit(batches, epochs=1, verbose=0)  # compiles
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    trainer.fit(batches, epochs=1, verbose=0)
    return n / (time.perf_counter() - started), compile_seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="wrn-16-8")
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS)
    parser.add_argument("--time-budget", type=float, help="minutes for the whole run, data and compile included")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--test-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, help="use this many training images (a quick check)")
    args = parser.parse_args()
    started = time.perf_counter()

    import keras

    from keras_wrn import data
    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig, package_versions
    from keras_wrn.training.in_memory import EpochLog, ShuffledBatches, build_fit_model
    from keras_wrn.training.schedules import epoch_step_decay

    os.makedirs(args.out, exist_ok=True)
    if os.path.exists(run_folder.path(args.out, run_folder.METRICS)):
        raise SystemExit(f"{args.out} already holds a run; choose another --out.")
    x_train, y_train, x_test, y_test = load_cifar_arrays(args.data, args.limit)
    print(f"data: {len(y_train)} train, {len(y_test)} test images ({time.perf_counter() - started:.0f} s)",
          flush=True)
    spec = data.get_dataset_spec("cifar10")

    def config_for(epochs):
        return TrainConfig.from_preset(
            "cifar10", model=args.model, epochs=epochs, batch_size=args.batch_size,
            lr_boundaries=scaled_boundaries(epochs), precision=args.precision, dropout_rate=args.dropout,
            seed=args.seed, xla=True, run_dir=args.out)

    steps_per_epoch = len(y_train) // args.batch_size
    epochs, probe = args.epochs, None
    if args.time_budget:
        ips, compile_seconds = probe_images_per_second(config_for(epochs), spec, (x_train, y_train))
        # Left: the budget less what has run, a second compile, and the test passes (~3% more).
        left = 60 * args.time_budget - (time.perf_counter() - started) - 1.5 * compile_seconds - 30
        epochs = max(1, min(args.epochs, int(left * ips / (1.03 * steps_per_epoch * args.batch_size))))
        probe = {"images_per_second": round(ips, 1), "compile_seconds": round(compile_seconds, 1),
                 "epochs_that_fit": epochs}
        print(f"probe: {ips:.0f} img/s after a {compile_seconds:.0f} s compile -> {epochs} epochs", flush=True)

    config = config_for(epochs)
    devices = []
    if keras.backend.backend() == "jax":
        import jax

        devices = [str(d) for d in jax.devices()]
    config.save(run_folder.path(args.out, run_folder.CONFIG), extra={
        "trained_with": "examples/train_cifar10_in_memory.py", "backend": keras.backend.backend(),
        "devices": devices,
        "data": os.path.basename(os.path.normpath(args.data)), "train_examples": int(len(y_train)),
        "probe": probe, "versions": package_versions("jax", "torch"),
    })
    trainer, net = build_fit_model(config, spec, steps_per_epoch)
    schedule = epoch_step_decay(config.learning_rate, config.lr_boundaries, config.lr_factor, steps_per_epoch)
    log = EpochLog(run_folder.path(args.out, run_folder.METRICS), steps_per_epoch * args.batch_size, schedule,
                   steps_per_epoch, net=net, weights_path=run_folder.path(args.out, run_folder.LAST_WEIGHTS))
    test_every = max(1, min(args.test_every, epochs))
    trainer.fit(
        ShuffledBatches(x_train, y_train, args.batch_size, seed=args.seed),
        epochs=epochs, verbose=0, callbacks=[log],
        validation_data=(x_test, y_test), validation_batch_size=200,
        validation_freq=[e for e in range(1, epochs + 1) if e % test_every == 0 or e == epochs],
    )
    with run_folder.atomic_path(run_folder.path(args.out, run_folder.LAST_WEIGHTS)) as tmp:
        net.save_weights(tmp)
    loss, accuracy = trainer.evaluate(x_test, y_test, batch_size=200, verbose=0)
    summary = {"epochs": epochs, "test_error": 1 - accuracy, "test_loss": loss,
               "minutes": round((time.perf_counter() - started) / 60, 2)}
    run_folder.write_json(run_folder.path(args.out, run_folder.RESULT), summary)
    print(f"done: {epochs} epochs, test accuracy {100 * accuracy:.2f}% ({summary['minutes']} min)", flush=True)


if __name__ == "__main__":
    main()
