"""The `keras-wrn` command line.

Each command turns its options into arguments and calls one function of the
package; the logic lives in the package, not here. Heavy imports (Keras) are
made inside the commands so that `keras-wrn --help` stays fast.
"""

import json

import click
from rich import box
from rich.console import Console
from rich.table import Table

from keras_wrn import __version__

DATASET_COLUMNS = (("cifar10", "C-10"), ("cifar100", "C-100"), ("svhn", "SVHN"))


def _registry():
    from keras_wrn.models import registry

    return registry


def _spec_or_fail(name):
    registry = _registry()
    try:
        return registry.get_model_spec(name)
    except registry.UnknownModelError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None


def _spec_record(spec):
    return {
        "name": spec.name,
        "family": spec.family,
        "description": spec.description,
        "input_size": spec.input_size,
        "num_classes": spec.num_classes,
        "params": spec.params,
        "macs": spec.macs,
        "paper": [
            {
                "dataset": r.dataset,
                "error": r.error,
                "top5_error": r.top5_error,
                "table": r.table,
                "note": r.note,
            }
            for r in spec.paper
        ],
    }


def _error_cell(spec, dataset):
    for result in spec.paper:
        if result.dataset == dataset:
            if result.top5_error is not None:
                return f"{result.error:g}/{result.top5_error:g}"
            return f"{result.error:g}"
    return ""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keras-wrn")
def main():
    """Wide Residual Networks for Keras 3 (Zagoruyko & Komodakis, 2016).

    Set the Keras backend with the KERAS_BACKEND environment variable
    (tensorflow, jax or torch).
    """


@main.command("models")
@click.option("--family", type=click.Choice(["cifar", "imagenet"]), help="Only this family.")
@click.option("--filter", "pattern", metavar="PATTERN", help="Shell-style name filter, e.g. 'wrn-28-*'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_command(family, pattern, as_json):
    """List the registered models: parameters, GMACs and the paper's errors.

    Errors are the paper's test errors in %, the first table that reports
    them (ImageNet: single-crop top-1 / top-5). Parameters are trainable
    weights (10 classes for CIFAR models, 1000 for ImageNet); GMACs per
    image at 32x32 (CIFAR) or 224x224 (ImageNet).
    """
    registry = _registry()
    specs = [registry.get_model_spec(n) for n in registry.list_models(pattern, family)]
    if as_json:
        click.echo(json.dumps([_spec_record(s) for s in specs], indent=2))
        return
    if not specs:
        raise click.ClickException(
            f"No registered model matches the filter {pattern!r}; run `keras-wrn models` for all."
        )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True)
    table.add_column("name", style="bold", no_wrap=True)
    for header in ("params", "GMACs", *(h for _, h in DATASET_COLUMNS), "ImageNet"):
        table.add_column(header, justify="right", no_wrap=True, min_width=len(header))
    table.add_column("table", no_wrap=True)
    for spec in specs:
        tables = sorted({r.table for r in spec.paper}, key=lambda t: int(t.split()[-1]))
        table.add_row(
            spec.name,
            f"{spec.params / 1e6:.1f}M",
            f"{spec.macs / 1e9:.3f}",
            *(_error_cell(spec, dataset) for dataset, _ in DATASET_COLUMNS),
            _error_cell(spec, "imagenet"),
            ",".join(t.replace("Table ", "T") for t in tables),
        )
    Console().print(table)


@main.command("summary")
@click.argument("name")
@click.option("--num-classes", type=click.IntRange(min=1), help="Classifier width (default: the registry's).")
@click.option("--input-size", type=click.IntRange(min=1), help="Square input size (default: the registry's).")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata and measured counts as JSON.")
def summary_command(name, num_classes, input_size, as_json):
    """Build the registered model NAME and print its layers and metadata."""
    from keras_wrn.models import common, count_macs, count_params

    spec = _spec_or_fail(name)
    overrides = {}
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if input_size is not None:
        overrides["input_shape"] = common.default_input_shape(input_size)
    try:
        model = spec.build(**overrides)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    record = {
        **_spec_record(spec),
        "model_name": model.name,
        "built_params": count_params(model),
        "built_macs": count_macs(model),
        "input_shape": list(model.input_shape[1:]),
        "output_shape": list(model.output_shape[1:]),
    }
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    model.summary()
    console = Console()
    console.print(f"[bold]{spec.name}[/bold]: {spec.description}")
    console.print(
        f"trainable parameters {record['built_params']:,}, "
        f"{record['built_macs'] / 1e9:.3f} GMACs per image at {record['input_shape']}"
    )
    for result in spec.paper:
        top5 = f", top-5 {result.top5_error:g}%" if result.top5_error is not None else ""
        note = f" ({result.note})" if result.note else ""
        console.print(f"paper, {result.table}: {result.dataset} error {result.error:g}%{top5}{note}")


if __name__ == "__main__":
    main()
