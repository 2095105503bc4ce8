"""GPU job `weights`: WRN-28-10 CIFAR-10 weights with the paper's recipe
(or `--recipe sam`: SAM, label smoothing, cosine, Cutout), shortened to what
fits the time budget, on the JPEG copy of CIFAR-10.

    python3 benchmarks/gpu/weights.py --budget 480 --out $OUT     # on the lent GPU, via pack.py's command
    cp .gpu-out/weights/*.part[3-9] $OUT/                         # the second, seconds-long call

`keras-wrn train`'s Keras fit trainer under JAX (mixed bfloat16, XLA), with
the time budget of `examples/train_cifar10_in_memory.py`: a probe of the
compiled step first, then the epochs that fit, the rate dropping at the
paper's fractions of them (60, 120, 160 of 200; the cosine of `--recipe sam`
spans them); a hard stop after any epoch
when the budget runs out. The network's weights are then saved as float16
layer weights (the weights table's format, about 73 MB for WRN-28-10) and cut
into parts of at most 16 MiB with their SHA-256 (`kit.split`). `$OUT` gets
the record (`record.json`: command, versions, GPU, epochs, results, the
parts' manifest), `metrics.jsonl`, `curves.png`, `log.txt` and the parts
that fit beside them; the others stay in `.gpu-out/weights/` for the second
call. Here, `python benchmarks/gpu/pack.py join` puts the file together and
checks it.
"""

import argparse
import dataclasses
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402

kit.bootstrap()
os.environ.setdefault("KERAS_BACKEND", "jax")

LEFT_BEHIND = os.path.join(kit.ROOT, ".gpu-out", "weights")  # an ignored folder, kept between calls on the device


def float16_weights(run_dir, model, path):
    """The run's last weights as float16 layer weights (`weights_io`), compressed."""
    import numpy as np

    from keras_wrn.models import registry
    from keras_wrn.models.weights_io import save_layer_weights

    net = registry.get_model(model, num_classes=10, classifier_activation=None)
    net.load_weights(os.path.join(run_dir, "last.weights.h5"))
    save_layer_weights(path, {layer.name: [np.asarray(w, dtype="float16") for w in layer.get_weights()]
                              for layer in net.layers if layer.weights}, compressed=True)
    return path


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=480, help="seconds for the whole job, results included")
    parser.add_argument("--out", default=os.environ.get("OUT"), help="the folder brought back ($OUT)")
    parser.add_argument("--data", default=kit.kit_path(kit.DATA, "cifar10-jpeg.tar.gz"))
    parser.add_argument("--model", default="wrn-28-10")
    parser.add_argument("--recipe", default="paper", help="paper, or sam / asam (keras_wrn.training.config.RECIPES)")
    parser.add_argument("--epochs", type=int, default=200, help="at most this many (the paper's 200)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="mixed_bfloat16")
    parser.add_argument("--part-mib", type=float, default=16)
    parser.add_argument("--run-dir", default=os.path.join(kit.ROOT, ".gpu-out", "run"))
    parser.add_argument("--left-behind", default=LEFT_BEHIND, help="where the parts wait for the second call")
    args = parser.parse_args()
    if not args.out:
        parser.error("--out (or OUT) is required")
    return args


def train_within(args, budget, out):
    """The run, in as many epochs as the budget holds by a probe of the
    compiled step (rate drops at the paper's fractions of them). Returns
    `(config, result, records, images per second)`."""
    from keras_wrn import data
    from keras_wrn.benchmark.budget import epochs_in_budget
    from keras_wrn.training import run_folder
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.records import read_metrics
    from keras_wrn.training.schedules import scaled_boundaries
    from keras_wrn.training.trainer import train

    spec = data.get_dataset_spec("cifar10")
    images = len(data.in_memory_arrays(spec, args.data)[1])
    shutil.rmtree(args.run_dir, ignore_errors=True)
    config = TrainConfig.from_preset("cifar10", recipe=args.recipe, model=args.model, data_dir=args.data,
                                     run_dir=args.run_dir, epochs=args.epochs, batch_size=args.batch_size,
                                     precision=args.precision, lr_boundaries=scaled_boundaries(args.epochs))
    epochs, rate = epochs_in_budget(config, spec, budget.left(), images_per_epoch=images, log=out.log)
    config = dataclasses.replace(config, epochs=epochs, lr_boundaries=scaled_boundaries(epochs))
    plan = f"rate drops at {list(config.lr_boundaries)}" if config.schedule == "step" else \
        f"{config.recipe} recipe: {config.optimizer}, cosine over them"
    out.log(f"training {epochs} epochs ({plan})")
    result = train(config, verbose=False, stop_when=lambda: not budget.fits(1.5 * images / rate))
    records = [r for r in read_metrics(run_folder.path(args.run_dir, run_folder.METRICS)) if "epoch" in r]
    out.log(f"{len(records)} epochs done, test error {100 * result.test_error:.2f}% ({args.precision}, this device)")
    return config, result, records, rate


def send_back(args, out, record):
    """The weights as float16 parts beside the record: those `$OUT` has
    room for now, the rest left for the second call, which `record` names."""
    from keras_wrn.training import run_folder

    left_behind = args.left_behind
    shutil.rmtree(left_behind, ignore_errors=True)
    os.makedirs(left_behind)
    weights = float16_weights(args.run_dir, args.model, os.path.join(left_behind, f"{args.model}-cifar10.weights.npz"))
    manifest = kit.split(weights, int(args.part_mib * kit.MIB), left_behind)
    os.remove(weights)
    for name in (run_folder.METRICS, run_folder.CURVES):
        shutil.copy(run_folder.path(args.run_dir, name), os.path.join(args.out, name))
    record["weights"] = manifest
    record_path = out.write_json("record.json", record)
    brought = []
    for part in manifest["parts"]:
        # room for this part and for record.json once it names what came back
        if out.room(part["bytes"] + os.path.getsize(record_path)):
            shutil.copy(os.path.join(left_behind, part["name"]), os.path.join(args.out, part["name"]))
            brought.append(part["name"])
    left = [part["name"] for part in manifest["parts"] if part["name"] not in brought]
    waiting = " ".join(os.path.join(os.path.relpath(left_behind, kit.ROOT), name) for name in left)
    record.update(parts_brought=brought, parts_left_on_device=left, second_call=f"cp {waiting} $OUT/" if left else None)
    out.log(f"{len(brought)} of {len(manifest['parts'])} parts in $OUT; "
            + (f"the second call brings back {', '.join(left)}" if left else "nothing left on the device"))


def main():
    args = parse_arguments()
    budget, out = kit.Budget(args.budget, reserve=45), kit.Output(args.out)
    environment = kit.environment()
    out.log(f"weights on {environment['device']}: {args.model}, budget {args.budget:g} s")
    config, result, records, rate = train_within(args, budget, out)
    record = {"model": args.model, "dataset": "cifar10 (JPEG copy)", "epochs_planned": config.epochs,
              "epochs_done": len(records), "paper_epochs": 200, "probe_images_per_second": rate,
              "test_error": result.test_error, "best_test_error": result.best_test_error, "steps": result.steps,
              "config": config.to_dict(), **environment}
    send_back(args, out, record)
    record["spent_seconds"] = round(budget.spent(), 1)
    out.write_json("record.json", record)


if __name__ == "__main__":
    main()
