"""GPU job `control`: keras-wrn and the official PyTorch code trained side by
side on the same data with the same shortened recipe, two seeds each.

    python3 benchmarks/gpu/control.py --budget 290 --out $OUT    # on the lent GPU, via pack.py's command

The recipe (both sides): a WRN-16-4 for 20 epochs (the paper's model family
at a size whose four runs fit five minutes of an H100 by the measured rates:
`pack.py plan`), batch 128, SGD with Nesterov momentum 0.9 and coupled weight
decay 5e-4, learning rate 0.1 times 0.2 at 30%, 60% and 80% of the epochs,
flip and reflection-padded crop, per-channel mean/std, on the JPEG copy of
CIFAR-10 (`.gpu-kit/data/cifar10-jpeg.tar.gz`).

- keras-wrn: `keras-wrn train`'s Keras fit trainer under JAX, mixed
  bfloat16 and XLA, as the published weights were trained;
- the official code: `main.py`'s loop on the paper's functional WRN
  (`keras_wrn.benchmark.torch_reference.official_cifar_training`), float32
  as `main.py` runs it (its cuDNN convolutions in TF32), with its way of
  dropping the rate (a new optimiser, so the momentum starts again).

Runs alternate (keras-wrn seed 0, official seed 0, keras-wrn seed 1, ...) so
that a budget cut leaves both sides; each runs in a process of its own (JAX's
and torch's libraries do not share one safely) and stops after an epoch when
the budget would not hold another. Each records the test error of every
epoch on the 10,000 JPEG test images and, at the end, the accuracy on the
1,017 original test images with exact pixels. Writes `control.json`,
`control.png` (the per-epoch curves) and `log.txt`.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402

kit.bootstrap()
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # PyTorch shares the GPU


def keras_run(args, seed, budget):
    """keras-wrn's run; returns its record."""
    import dataclasses

    import keras
    import numpy as np

    from keras_wrn.models.weights import CIFAR_MEAN, CIFAR_STD
    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.records import read_metrics
    from keras_wrn.training.schedules import scaled_boundaries
    from keras_wrn.training.trainer import train

    run_dir = os.path.join(args.runs_dir, f"keras-seed{seed}")
    config = TrainConfig.from_preset("cifar10", model=args.model, data_dir=args.data, run_dir=run_dir,
                                     epochs=args.epochs, batch_size=args.batch_size, precision=args.keras_precision,
                                     seed=seed)
    train(dataclasses.replace(config, lr_boundaries=scaled_boundaries(args.epochs)), verbose=False,
          stop_when=lambda: not budget.fits(args.epoch_estimate))
    model = keras.saving.load_model(run_folder.path(run_dir, run_folder.MODEL))
    exact = load_exact(args.exact)
    logits = model.predict((exact["images"].astype("float32") - np.array(CIFAR_MEAN)) / np.array(CIFAR_STD),
                           verbose=0, batch_size=256)
    return {"implementation": "keras-wrn", "seed": seed, "precision": args.keras_precision,
            "records": [r for r in read_metrics(run_folder.path(run_dir, run_folder.METRICS)) if "epoch" in r],
            "exact_1017_accuracy": float((logits.argmax(1) == exact["labels"]).mean())}


def official_run(args, seed, budget):
    """The official code's run; returns its record."""
    import torch

    from keras_wrn import data
    from keras_wrn.benchmark.torch_reference import official_cifar_training
    from keras_wrn.training.schedules import scaled_boundaries

    x_train, y_train, x_test, y_test, _ = data.in_memory_arrays(data.get_dataset_spec("cifar10"), args.data)
    torch.backends.cudnn.benchmark = True  # as main.py
    records, predict = official_cifar_training(
        x_train, y_train, x_test, y_test, depth=args.depth, k=args.k, epochs=args.epochs,
        batch_size=args.batch_size, epoch_step=scaled_boundaries(args.epochs), seed=seed,
        device="cuda" if torch.cuda.is_available() else "cpu",
        autocast=None if args.torch_precision == "float32" else args.torch_precision,
        keep_going=lambda: budget.fits(args.epoch_estimate))
    exact = load_exact(args.exact)
    logits = predict(exact["images"])
    return {"implementation": "official PyTorch code", "seed": seed, "precision": args.torch_precision,
            "records": records, "exact_1017_accuracy": float((logits.argmax(1) == exact["labels"]).mean())}


def load_exact(path):
    import numpy as np

    with np.load(path) as stored:
        return {"images": stored["images"], "labels": stored["labels"].astype("int64")}


def child(args):
    """One run, in a process of its own (JAX's and torch's libraries do not
    share a process safely; each run starts with the whole GPU free): writes
    its record to `args.record`."""
    import json

    budget = kit.Budget(args.seconds, reserve=5)
    run = (keras_run if args.child == "keras-wrn" else official_run)(args, args.seed, budget)
    run["seconds"] = round(budget.spent(), 1)
    with open(args.record, "w") as handle:
        json.dump(run, handle)


def run_in_child(args, implementation, seed, seconds, out):
    """Runs one training in a child process within `seconds`; its record, or
    None (its error in the log)."""
    import json
    import subprocess

    record = os.path.join(args.runs_dir, f"{implementation.split()[0]}-seed{seed}.json")
    command = [sys.executable, os.path.abspath(__file__), "--child", implementation, "--seed", str(seed),
               "--seconds", str(seconds), "--record", record, "--out", args.out, "--data", args.data,
               "--exact", args.exact, "--model", args.model, "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--keras-precision", args.keras_precision,
               "--torch-precision", args.torch_precision, "--runs-dir", args.runs_dir,
               "--epoch-estimate", str(args.epoch_estimate)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        out.log(f"{implementation}, seed {seed}: stopped by the budget")
        return None
    if result.returncode or not os.path.exists(record):
        out.log(f"{implementation}, seed {seed} failed (exit {result.returncode}): {result.stderr.strip()[-800:]}")
        return None
    with open(record) as handle:
        return json.load(handle)


def plot(runs, path, title):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    colours = {"keras-wrn": "tab:red", "official PyTorch code": "tab:blue"}
    for run in runs:
        epochs = [r["epoch"] for r in run["records"] if r.get("test_error") is not None]
        errors = [100 * r["test_error"] for r in run["records"] if r.get("test_error") is not None]
        axis.plot(epochs, errors, "-" if run["seed"] == 0 else "--", color=colours[run["implementation"]],
                  label=f"{run['implementation']}, seed {run['seed']}")
    axis.set_xlabel("epoch")
    axis.set_ylabel("test error (%), JPEG CIFAR-10")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=290, help="seconds for the whole job, results included")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="the folder brought back ($OUT)")
    parser.add_argument("--data", default=kit.kit_path(kit.DATA, "cifar10-jpeg.tar.gz"))
    parser.add_argument("--exact", default=kit.kit_path(kit.DATA, "cifar10-test-exact-1017.npz"))
    parser.add_argument("--model", default="wrn-16-4")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--keras-precision", default="mixed_bfloat16")
    parser.add_argument("--torch-precision", default="float32", help="float32 (as main.py) or bfloat16 (autocast)")
    parser.add_argument("--runs-dir", default=os.path.join(kit.ROOT, ".gpu-out", "control"))
    parser.add_argument("--epoch-estimate", type=float, default=5.0, help="seconds an epoch may take")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.out:
        parser.error("--out (or OUT) is required")
    from keras_wrn.models import registry

    spec_model = registry.get_model_spec(args.model)
    args.depth, args.k = spec_model.kwargs["depth"], spec_model.kwargs["k"]
    return args


def recipe(args, train_images, test_images):
    """The shortened recipe both sides train with, as control.json records it."""
    from keras_wrn.training.schedules import scaled_boundaries

    return {"model": args.model, "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": 0.1,
            "lr_boundaries": list(scaled_boundaries(args.epochs)), "lr_factor": 0.2, "momentum": 0.9,
            "nesterov": True, "weight_decay": 5e-4, "augmentation": "flip, 4-pixel reflect-padded crop",
            "normalization": "mean/std", "data": os.path.basename(args.data), "train_images": train_images,
            "test_images": test_images}


def train_in_turn(args, budget, out, write):
    """keras-wrn and the official code in turn, seed by seed, while the
    budget holds the next run; `write(runs)` after each. Returns the runs."""
    runs, durations = [], {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for implementation in ("keras-wrn", "official PyTorch code"):
            if not budget.fits(durations.get(implementation, 30), f"{implementation} seed {seed}"):
                continue
            out.log(f"{implementation}, seed {seed}: training")
            run = run_in_child(args, implementation, seed, budget.left(), out)
            if run is None:
                continue
            durations[implementation] = run["seconds"]
            last = run["records"][-1] if run["records"] else {}
            run["jpeg_test_accuracy"] = 1 - last["test_error"] if last.get("test_error") is not None else None
            run["epochs_done"] = len(run["records"])
            out.log(f"{implementation}, seed {seed}: {run['epochs_done']} epochs in {run['seconds']:.0f} s, "
                    f"JPEG test accuracy {100 * (run['jpeg_test_accuracy'] or 0):.2f}%, exact 1,017 "
                    f"{100 * run['exact_1017_accuracy']:.2f}%")
            runs.append(run)
            write(runs)
    return runs


def main():
    args = parse_arguments()
    if args.child:
        child(args)
        return
    from keras_wrn import data

    budget, out = kit.Budget(args.budget, reserve=20), kit.Output(args.out)
    environment = kit.environment()
    out.log(f"control on {environment['device']}: {args.model}, {args.epochs} epochs, seeds {args.seeds}, "
            f"budget {args.budget:g} s")
    shutil.rmtree(args.runs_dir, ignore_errors=True)
    os.makedirs(args.runs_dir)
    # Decoded once here: the runs read the arrays the cache keeps beside the unpacked archive.
    _, y_train, _, y_test, _ = data.in_memory_arrays(data.get_dataset_spec("cifar10"), args.data)
    out.log(f"data: {len(y_train)} training and {len(y_test)} test images (JPEG), "
            f"{len(load_exact(args.exact)['labels'])} exact")
    shared = {"recipe": recipe(args, len(y_train), len(y_test))}

    def write(runs):
        out.write_json("control.json", {**shared, "runs": runs, **environment, "skipped": list(budget.skipped),
                                        "budget_seconds": args.budget, "spent_seconds": round(budget.spent(), 1)})

    runs = train_in_turn(args, budget, out, write)
    if runs:
        plot(runs, os.path.join(args.out, "control.png"),
             f"{args.model}, {args.epochs} epochs: keras-wrn and the official code")
    out.log(f"done in {budget.spent():.0f} s; skipped: {budget.skipped or 'nothing'}")


if __name__ == "__main__":
    main()
