"""The `keras-wrn` command line.

Each command turns its options into arguments and calls one function of the
package; the logic lives in the package, not here. The choices come from the
package's own constants, read from modules that load no backend, and Keras
is imported inside the commands that build models, so `keras-wrn --help`
and `keras-wrn models` load neither TensorFlow nor JAX. Errors keras-wrn
raises (`KerasWRNError`) end as one line; the frameworks' log lines are
filtered out unless `--verbose` (`keras_wrn.framework_logs`).
"""

import json
import os

import click
from rich import box
from rich.console import Console
from rich.table import Table

from keras_wrn import framework_logs
from keras_wrn._version import __version__
from keras_wrn.convert.sources import CHECKPOINT_SOURCES as CHECKPOINT_SOURCE_NAMES
from keras_wrn.data import AUGMENTATIONS
from keras_wrn.data.download import MIRROR_ENV
from keras_wrn.errors import KerasWRNError
from keras_wrn.export import FORMATS
from keras_wrn.export.tflite import QUANTIZATIONS
from keras_wrn.models import registry
from keras_wrn.models.variants import SOURCES
from keras_wrn.models.weights import NORMALIZATIONS
from keras_wrn.training.config import OPTIMIZERS, PRECISIONS, RECIPES, SCHEDULES, STRATEGIES
from keras_wrn.training.evaluate import WEIGHT_CHOICES

DATASET_COLUMNS = (("cifar10", "C-10"), ("cifar100", "C-100"), ("svhn", "SVHN"))


DATA_DIR_HELP = ("tensorflow-datasets data folder; or the dataset as image files: a folder with train/ and "
                 "test/ (a folder per class), or a .tar.gz of one.")


def _spec_or_fail(name):
    try:
        return registry.get_model_spec(name)
    except registry.UnknownModelError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None


def _error_cell(spec, dataset):
    result = spec.paper_result(dataset)
    if result is None:
        return ""
    return f"{result.error:g}" + (f"/{result.top5_error:g}" if result.top5_error is not None else "")


class _Commands(click.Group):
    """The command group, with the one error handler of every command: an
    error keras-wrn raises (bad input, missing data, a full disk, ...) ends
    as one clear line, not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KerasWRNError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-wrn")
@click.option("--verbose", is_flag=True, envvar=framework_logs.VERBOSE_ENV,
              help=f"Show TensorFlow's, absl's and XLA's log lines (or set {framework_logs.VERBOSE_ENV}=1).")
def main(verbose):
    """Wide Residual Networks for Keras 3 (Zagoruyko & Komodakis, 2016).

    Set the Keras backend with the KERAS_BACKEND environment variable
    (tensorflow, jax or torch).
    """
    if not verbose:
        framework_logs.quiet(filter_stderr=False)


def run():
    """The `keras-wrn` executable: `main` with the frameworks' log lines
    filtered from standard error (before any of them can be written)."""
    if not framework_logs.verbose_requested():
        framework_logs.quiet()
    main()


@main.command("models")
@click.option("--family", type=click.Choice(registry.FAMILIES), help="Only this family.")
@click.option("--use", type=click.Choice(registry.USES), help="Only the models used for this.")
@click.option("--filter", "pattern", metavar="PATTERN", help="Shell-style name filter, e.g. 'wrn-28-*'.")
@click.option("--pretrained", is_flag=True, help="Only models with weights to build them with (weights=TAG).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(family, use, pattern, pretrained, as_json):
    """List the registered models, grouped by what their users do with them
    (the paper, robustness, semi-supervised, distillation, anomaly
    detection, optimisers): parameters, GMACs, the paper's errors, whose code
    each reproduces and the weights tags each can be built with.

    Errors are the paper's test errors in %, the first table that reports
    them (ImageNet: single-crop top-1 / top-5). Parameters are trainable
    weights (10 classes for CIFAR models, 1000 for ImageNet); GMACs per
    image at 32x32 (CIFAR) or 224x224 (ImageNet). Weights: the tags of
    `keras_wrn.get_model(NAME, weights=TAG)` (`--json` has their source,
    SHA-256, classes, preprocessing and metrics).
    """
    specs = [registry.get_model_spec(n) for n in registry.list_models(pattern, family, pretrained, use)]
    if as_json:
        click.echo(json.dumps([s.to_dict() for s in specs], indent=2))
        return
    if not specs:
        raise click.ClickException(
            f"No registered model matches the filter {pattern!r}; run `keras-wrn models` for all."
        )
    console = _console()
    for group in (use,) if use else registry.USES:
        members = [spec for spec in specs if group in spec.uses]
        if members:
            console.print(_models_table(members, title=group))
    sources = sorted({spec.source for spec in specs}, key=list(SOURCES).index)
    for name in sources:
        console.print(f"[bold]{name}[/bold]: {SOURCES[name].projects} ({SOURCES[name].reference})")


def _models_table(specs, title):
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True, title=title,
                  title_justify="left", title_style="bold")
    table.add_column("name", style="bold", no_wrap=True)
    for header in ("params", "GMACs", *(h for _, h in DATASET_COLUMNS), "ImageNet"):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    table.add_column("table", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("weights")
    for spec in specs:
        tables = sorted({r.table for r in spec.paper}, key=lambda t: int(t.split()[-1]))
        table.add_row(
            spec.name,
            f"{spec.params / 1e6:.1f}M",
            f"{spec.macs / 1e9:.3f}",
            *(_error_cell(spec, dataset) for dataset, _ in DATASET_COLUMNS),
            _error_cell(spec, "imagenet"),
            ",".join(t.replace("Table ", "T") for t in tables),
            spec.source,
            ", ".join(entry.tag for entry in spec.weights),
        )
    return table


@main.command("summary")
@click.argument("name")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classifier width (default: the registry's).")
@click.option("--input-size", type=click.IntRange(min=1), help="Square input size (default: the registry's).")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata and measured counts as JSON.")
def summary_command(name, num_classes, input_size, as_json):
    """Build the registered model NAME and print its layers and metadata."""
    from keras_wrn.models import count_macs, count_params
    from keras_wrn.models.arguments import default_input_shape

    spec = _spec_or_fail(name)
    overrides = {}
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if input_size is not None:
        overrides["input_shape"] = default_input_shape(input_size)
    model = spec.build(**overrides)
    record = {
        **spec.to_dict(),
        "model_name": model.name,
        "built_params": count_params(model),
        "built_macs": count_macs(model),
        "input_shape": list(model.input_shape[1:]),
        "output_shape": list(model.output_shape[1:]),
        "options": model.style.differences() if hasattr(model, "style") else {},
    }
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    model.summary()
    console = _console()
    console.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    source = SOURCES[spec.source]
    options = ", ".join(f"{key}={value!r}" for key, value in record["options"].items()) or "the paper's"
    console.print(f"options: {options}; source: {spec.source} ({source.projects}); "
                  f"used for: {', '.join(spec.uses)}")
    console.print(
        f"trainable parameters {record['built_params']:,}, "
        f"{record['built_macs'] / 1e9:.3f} GMACs per image at {record['input_shape']}"
    )
    for result in spec.paper:
        top5 = f", top-5 {result.top5_error:g}%" if result.top5_error is not None else ""
        note = f" ({result.note})" if result.note else ""
        console.print(f"paper, {result.table}: {result.dataset} error {result.error:g}%{top5}{note}")
    for entry in spec.weights:
        console.print(f"weights={entry.tag!r}: {entry.description}")


def _console():
    """Rich's console; piped output keeps whole table rows (rich wraps at 80
    columns when it cannot see a terminal)."""
    console = Console()
    return console if console.is_terminal else Console(width=240)


@main.command("train")
@click.option("--dataset", default="digits", show_default=True,
              help="cifar10, cifar100, svhn, imagenet, digits (embedded, no download) or an "
                   "image folder with train/ and test/ sub-folders.")
@click.option("--model", help="Registered model name (`keras-wrn models`); default: the preset's.")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (preset: the paper's).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size, over all replicas.")
@click.option("--lr", "learning_rate", type=click.FloatRange(min=0, min_open=True), help="Initial learning rate.")
@click.option("--lr-boundaries", help="Comma-separated epochs (from 1) at whose start the rate drops, e.g. 60,120,160.")
@click.option("--lr-factor", type=click.FloatRange(min=0, min_open=True), help="Factor applied at each boundary.")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="Coupled L2 weight decay (Torch's).")
@click.option("--dropout", "dropout_rate", type=click.FloatRange(0, 1, max_open=True), help="Dropout between convolutions (CIFAR models).")
@click.option("--zca", is_flag=True, default=None,
              help="GCN + ZCA whitening fitted on the training set (the paper's Table 4), not mean/std.")
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="paper", show_default=True,
              help="paper: the dataset's preset; sam / asam: the SAM and ASAM papers' CIFAR recipe (SAM rho 0.05 "
                   "/ ASAM rho 0.5, label smoothing 0.1, cosine, 200 epochs, Cutout) on top of it.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS),
              help="sgd (the paper's), sam or asam (sharpness-aware: two passes per step).  [default: the recipe's]")
@click.option("--sam-rho", type=click.FloatRange(min=0, min_open=True),
              help="SAM's neighbourhood radius.  [default: 0.05 for sam, 0.5 for asam]")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="Label smoothing (e.g. 0.1).")
@click.option("--schedule", type=click.Choice(SCHEDULES),
              help="step (--lr-boundaries, --lr-factor) or cosine (to 0 over the run).  [default: the recipe's]")
@click.option("--warmup-epochs", type=click.IntRange(min=0), help="Linear warm-up from 0 (cosine).")
@click.option("--ema", "ema_decay", type=click.FloatRange(0, 1, min_open=True, max_open=True), metavar="DECAY",
              help="Keep an exponential moving average of the weights (e.g. 0.999), tested every epoch and saved "
                   "as ema.weights.h5 (--weights ema in evaluate, export, predict).")
@click.option("--augment", type=click.Choice(AUGMENTATIONS),
              help="paper (flip and crop), cutout (then a Cutout of half the side: 16x16 on CIFAR), randaugment "
                   "(Keras' RandAugment first) or autoaugment (AutoAugment's learned policy, SVHN's on SVHN and "
                   "CIFAR-10's elsewhere, then Cutout).")
@click.option("--seed", type=int, help="Random seed (data order, augmentation, init).")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; default runs/DATASET-MODEL.")
@click.option("--data-dir", type=click.Path(), help=DATA_DIR_HELP)
@click.option("--download/--no-download", default=True, show_default=True,
              help="Download and prepare a missing cifar10, cifar100 or svhn first (tensorflow-datasets' builders, "
                   "checksums checked); --no-download fails at once instead.")
@click.option("--data-mirror", metavar="URL", envvar=MIRROR_ENV,
              help=f"An HTTP mirror holding the datasets' original files under their own names (or {MIRROR_ENV}).")
@click.option("--strategy", type=click.Choice(STRATEGIES),
              help="Devices to train on. TensorFlow: the tf.distribute strategy (multi-worker reads TF_CONFIG). "
                   "JAX: Keras' DataParallel; auto = every device (of every host under a multi-host start, "
                   "KERAS_DISTRIBUTION_*), one-device, mirrored = this host's devices, multi-worker = every "
                   "host's. PyTorch: one device.  [default: auto]")
@click.option("--tpu", help="TPU name or address for --strategy tpu (TensorFlow).")
@click.option("--cpu-devices", type=click.IntRange(min=1),
              help="Split the CPU into N devices (training on several devices without a GPU, for testing).")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help=f"Keras dtype policy.  [default: {PRECISIONS[0]}]")
@click.option("--xla/--no-xla", default=None,
              help="Compile each replica's training step with XLA.  [default: on; off for several "
                   "replicas on CPUs, where TensorFlow's XLA cannot run]")
@click.option("--checkpoint-steps", type=click.IntRange(min=1), help="Also checkpoint every N steps.")
@click.option("--checkpoint-minutes", type=click.FloatRange(min=0, min_open=True),
              help="Checkpoint at least this often.  [default: 10]")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from the run folder's last checkpoint; --no-resume refuses a used folder.")
@click.option("--smoke", is_flag=True, help="Shrink the run to seconds: 2 epochs of 3 tiny steps.")
def train_command(lr_boundaries, **options):
    """Train a WRN with the paper's recipe for --dataset, or a newer one
    (--recipe sam), every value overridable.

    The run folder keeps checkpoints (a killed run resumes when started again
    with the same command), best/last weights, metrics.jsonl, TensorBoard
    logs, curves.png and the final model.keras.
    """
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.trainer import train

    if lr_boundaries is not None:
        try:
            options["lr_boundaries"] = tuple(int(e) for e in lr_boundaries.split(",") if e.strip())
        except ValueError:
            raise click.BadParameter("use comma-separated epoch numbers, e.g. 60,120,160",
                                     param_hint="--lr-boundaries") from None
    result = train(TrainConfig.from_preset(options.pop("dataset"), **options))
    click.echo(
        f"Done: {result.steps} steps, final learning rate {result.learning_rate:.6g}, "
        f"test error {100 * result.test_error:.2f}% (best {100 * result.best_test_error:.2f}%). "
        f"Run folder: {result.run_dir}"
    )


@main.command("prepare")
@click.argument("datasets", nargs=-1, required=True, metavar="DATASET...")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="tensorflow-datasets folder to prepare into.  [default: TFDS_DATA_DIR or ~/tensorflow_datasets]")
@click.option("--data-mirror", metavar="URL", envvar=MIRROR_ENV,
              help=f"An HTTP mirror holding the datasets' original files under their own names (or {MIRROR_ENV}).")
def prepare_command(datasets, data_dir, data_mirror):
    """Download and prepare DATASET... (cifar10, cifar100, svhn) for training,
    and nothing else: for machines whose compute nodes have no network.

    Run it where there is network, then copy the prepared folders (DATA_DIR/cifar10/,
    DATA_DIR/svhn_cropped/, ...; the downloads/ folder is not needed) into the
    compute nodes' data folder, e.g. `rsync -a ~/tensorflow_datasets/svhn_cropped node:tensorflow_datasets/`,
    and train there with --data-dir (or TFDS_DATA_DIR) and --no-download. It says
    how much will be downloaded and how much disk it needs first, and refuses at
    once when the disk cannot hold it or the hosts do not answer.
    """
    from keras_wrn import data

    for name in datasets:
        spec = data.get_dataset_spec(name)
        if not spec.tfds_name:
            raise click.BadParameter(f"{name} is not a tensorflow-datasets dataset: use cifar10, cifar100 or svhn",
                                     param_hint="DATASET")
        root = data.prepare(spec, data_dir, mirror=data_mirror, log=click.echo)
        click.echo(f"{spec.name} is ready in {root}/{spec.tfds_name}.")


@main.command("evaluate")
@click.argument("target", type=click.Path(exists=True))
@click.option("--dataset", help="Dataset to test on (default: the run's).")
@click.option("--data-dir", type=click.Path(), help=DATA_DIR_HELP)
@click.option("--weights", type=click.Choice(WEIGHT_CHOICES), default="final", show_default=True,
              help="For a run folder: model.keras, best.weights.h5, last.weights.h5 or ema.weights.h5 (runs with "
                   "--ema).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def evaluate_command(target, dataset, data_dir, weights, batch_size, as_json):
    """Test error of TARGET (a run folder or a .keras file), in the paper's terms."""
    from keras_wrn.training.evaluate import evaluate

    result = evaluate(target, dataset=dataset, data_dir=data_dir, weights=weights,
                      batch_size=batch_size)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("model", "dataset", "weights", "examples", "test error", "top-5 error", "test loss"):
        table.add_column(column, justify="right" if "error" in column or column in ("examples", "test loss") else "left")
    top5 = result.get("test_top5_error")
    table.add_row(result["model"], result["dataset"], str(result["weights"]), f"{result['num_examples']:,}",
                  f"{100 * result['test_error']:.2f}%", f"{100 * top5:.2f}%" if top5 is not None else "-",
                  f"{result['test_loss']:.4f}")
    _console().print(table)


@main.command("export")
@click.argument("target", type=click.Path(exists=True))
@click.option("--format", "export_format", type=click.Choice(FORMATS), default=FORMATS[0],
              show_default=True, help="SavedModel in TF Serving's versioned layout, or a .tflite file.")
@click.option("--quantize", type=click.Choice(QUANTIZATIONS), default=QUANTIZATIONS[0],
              show_default=True, help="TFLite quantisation (int8: full-integer, calibrated on training images).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Export folder (TF Serving's --model_base_path); default exported/DATASET-MODEL.")
@click.option("--version", "version", type=click.IntRange(min=1),
              help="SavedModel version number (default: the next free one; never overwrites).")
@click.option("--overwrite", is_flag=True, help="Replace an existing .tflite file of the same quantisation.")
@click.option("--weights", type=click.Choice(WEIGHT_CHOICES), default="final", show_default=True,
              help="For a run folder: model.keras, best.weights.h5, last.weights.h5 or ema.weights.h5 (runs with "
                   "--ema).")
@click.option("--dataset", help="Dataset of a .keras TARGET (normalisation, class names, test images).")
@click.option("--data-dir", type=click.Path(), help=DATA_DIR_HELP)
@click.option("--max-examples", type=click.IntRange(min=1),
              help="Verify on the first N test images only (default: the whole test split).")
def export_command(target, export_format, quantize, out, version, overwrite, weights, dataset, data_dir,
                   max_examples):
    """Export TARGET (a run folder or a .keras file) for deployment, verified.

    The export's outputs are compared with the Keras model's on the dataset's
    test images before it is moved into place; a disagreement beyond
    tolerance fails and writes nothing. A model card (model_card.json,
    MODEL_CARD.md) beside the export records the figures.
    """
    from keras_wrn.export import export_savedmodel, export_tflite
    from keras_wrn.export.source import load_source

    if export_format == "savedmodel" and quantize != "none":
        raise click.BadParameter("applies to --format tflite only", param_hint="--quantize")
    if export_format == "tflite" and version is not None:
        raise click.BadParameter("applies to --format savedmodel only", param_hint="--version")
    source = load_source(target, dataset=dataset, data_dir=data_dir, weights=weights)
    out = out or os.path.join("exported", f"{source.dataset.name}-{source.model_name}")
    if export_format == "savedmodel":
        export_savedmodel(target, out, version=version, max_examples=max_examples, source=source)
    else:
        export_tflite(target, out, quantize=quantize, overwrite=overwrite, max_examples=max_examples,
                      source=source)


@main.command("predict")
@click.argument("model", type=click.Path(exists=True))
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--dataset", help="Dataset of a .keras MODEL outside a run folder (normalisation, class names).")
@click.option("--data-dir", type=click.Path(), help=DATA_DIR_HELP)
@click.option("--weights", type=click.Choice(WEIGHT_CHOICES), default="final", show_default=True,
              help="For a run folder: model.keras, best, last or ema (runs with --ema) weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def predict_command(model, images, top_k, dataset, data_dir, weights, as_json):
    """Classify IMAGES (JPEG, PNG, GIF, BMP) with MODEL: a run folder, a .keras
    file, a SavedModel (version folder or base path) or a .tflite file."""
    from keras_wrn.export import load_predictor

    predictor = load_predictor(model, dataset=dataset, data_dir=data_dir, weights=weights)
    results = predictor.top_k(images, k=top_k)
    if as_json:
        click.echo(json.dumps({"model": predictor.path, "format": predictor.kind, "results": results}, indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("image", "rank", "class", "name", "probability"):
        table.add_column(column, justify="right" if column in ("rank", "class", "probability") else "left")
    for result in results:
        for rank, prediction in enumerate(result["predictions"], 1):
            table.add_row(result["file"] if rank == 1 else "", str(rank), str(prediction["class_id"]),
                          prediction["class_name"], f"{prediction['probability']:.4f}")
    _console().print(table)


@main.command("convert")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", type=click.Choice(list(CHECKPOINT_SOURCE_NAMES)),
              help="The project the weights come from, which fixes the forward the file cannot say "
                   "(default: the file's key layout, where one project uses it).")
@click.option("--model", "model_name",
              help="Registered model name (ImageNet layouts: required, e.g. wrn-50-2-bottleneck; CIFAR sources: "
                   "optional, checked against the file).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The .keras file to write.")
@click.option("--dataset", type=click.Choice(["cifar10", "cifar100"]),
              help="Normalise pixels 0-255 inside the model with this dataset's constants (DeepMind's models need "
                   "it or --normalization).")
@click.option("--normalization", type=click.Choice(list(NORMALIZATIONS)),
              help="Normalise pixels 0-255 inside the model: zero_to_one for models trained on [0, 1] inputs, ...")
@click.option("--ema", is_flag=True, help="Convert the EMA weights a semi-supervised checkpoint holds.")
@click.option("--input-size", type=click.IntRange(min=1), help="Square input size (default: the registry's).")
def convert_command(checkpoint, source, model_name, out, dataset, normalization, ema, input_size):
    """Convert a PyTorch checkpoint into a keras_wrn .keras model: torchvision
    and timm ResNets, the paper's official checkpoints, and the CIFAR WRNs of
    RobustBench (xternalz, deepmind), the semi-supervised codebases
    (fixmatch-torch, torchssl, usb), RepDistiller and pytorchcv.

    CIFAR sources take depth, width, biases and classes from the file and the
    forward from --source. The file is read without running code from it
    (torch weights_only=True, or safetensors); what it contradicts, and every
    tensor that is unmapped, missing or mis-shaped, is refused by name.
    """
    from keras_wrn.convert import convert_checkpoint

    _, report = convert_checkpoint(checkpoint, model_name, out, source=source, dataset=dataset,
                                   normalization=normalization, ema=ema, input_size=input_size)
    unused = f", {len(report['unused_layers'])} unused batch norms dropped" if report["unused_layers"] else ""
    takes = "RGB pixels 0-255" if report["normalization"] else "inputs normalised as in its training"
    click.echo(f"Converted {report['tensors']} tensors of the {report['source']} checkpoint into "
               f"{report['layers']} layers of {report['model']}"
               + (f" ({report['num_classes']} classes)" if report["num_classes"] else " (no classifier)")
               + f"{unused}; it takes {takes}: {report['out']}")


@main.command("benchmark")
@click.option("--model", "model_name", default="wrn-16-4", show_default=True, help="Registered CIFAR model.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--parts", default="train,infer,latency", show_default=True,
              help="Comma-separated: train, infer, latency, savedmodel, tflite.")
@click.option("--xla/--no-xla", default=True, show_default=True,
              help="Compile keras-wrn's steps with XLA (the trainer instead measures which is faster on "
                   "this CPU unless told).")
@click.option("--precision", type=click.Choice(PRECISIONS), default=PRECISIONS[0], show_default=True)
@click.option("--input-pipeline", is_flag=True, help="Feed training through keras_wrn.data's tf.data pipeline.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also time the paper's official PyTorch code (needs torch).")
@click.option("--windows", type=click.IntRange(min=1), default=5, show_default=True, help="Timed windows per case.")
@click.option("--min-seconds", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Shortest timed window.")
@click.option("--threads", type=click.IntRange(min=1), help="Threads for torch and LiteRT (default: all cores).")
@click.option("--settings", "settings",
              help="Instead of the parts: sweep these training settings, each in its own process, "
                   "interleaved ('all', or comma-separated names from keras_wrn.benchmark.SETTINGS).")
@click.option("--json-out", type=click.Path(dir_okay=False), help="Also write the result as JSON here.")
def benchmark_command(model_name, batch_size, parts, xla, precision, input_pipeline, reference, windows,
                      min_seconds, threads, settings, json_out):
    """Images/s, GFLOP/s and fraction of the measured matmul peak, for
    keras-wrn and the official PyTorch WRN, interleaved (see benchmarks/)."""
    from keras_wrn.benchmark import format_settings, format_table, run_benchmark, run_settings

    if settings:
        names = None if settings == "all" else [n.strip() for n in settings.split(",") if n.strip()]
        result = run_settings(model_name, batch_size, names=names, windows=windows, min_seconds=min_seconds,
                              threads=threads, log=lambda message: click.echo(message, err=True))
        lines = format_settings(result)
    else:
        result = run_benchmark(model_name, batch_size,
                               parts=tuple(p.strip() for p in parts.split(",") if p.strip()),
                               xla=xla, precision=precision, input_pipeline=input_pipeline,
                               reference=reference, windows=windows, min_seconds=min_seconds,
                               threads=threads, log=lambda message: click.echo(message, err=True))
        lines = format_table(result)
    for line in lines:
        click.echo(line)
    if json_out:
        from keras_wrn import files

        files.write_json(json_out, result)


if __name__ == "__main__":
    run()
