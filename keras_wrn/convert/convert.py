"""`keras-wrn convert`: a PyTorch checkpoint -> a keras_wrn model, saved as
`.keras`: the ImageNet layouts onto a registered model (`--model`), the
CIFAR WRNs of every source in use (`convert.sources`) onto `WideResNet`
with the file's depth and width and the source's forward."""

import os

import numpy as np

from keras_wrn import files
from keras_wrn.convert.checkpoint import read_state_dict
from keras_wrn.convert.mapping import ConversionError, to_keras_layer_weights
from keras_wrn.convert.sources import builder_arguments, read_cifar_architecture, registered_names, resolve_source
from keras_wrn.errors import InvalidArgumentError

DEEPMIND_BUFFERS = ("mean", "std")


def resolve_normalization(source, buffers, normalization=None, dataset=None):
    """The `include_preprocessing` of the converted model (None: none).

    `normalization`: a name of `models.weights.NORMALIZATIONS` or `{"mean",
    "std"}` on pixels 0-255; `dataset` (`cifar10`, `cifar100`): its named
    constants. DeepMind's WRNs normalise inside the model: their constants
    come from the file's `mean`/`std` buffers where it has them (a named one
    must then agree), else must be named."""
    from keras_wrn.models import weights

    if normalization is not None and dataset is not None:
        raise InvalidArgumentError(
            f"Pass --normalization or --dataset, not both. Received: normalization={normalization!r}, "
            f"dataset={dataset!r}")
    named = dataset if dataset is not None else normalization
    chosen = None
    if named is not None:
        chosen = weights.named_normalization(named) if isinstance(named, str) else \
            weights.Preprocessing.from_dict(named)
    if buffers:
        stored = weights.Preprocessing(tuple(255.0 * buffers["mean"].reshape(-1)),
                                       tuple(255.0 * buffers["std"].reshape(-1)))
        if chosen is not None and not (np.allclose(chosen.mean, stored.mean, rtol=1e-4)
                                       and np.allclose(chosen.std, stored.std, rtol=1e-4)):
            raise ConversionError(
                f"The checkpoint's own normalisation (mean {[round(m / 255, 4) for m in stored.mean]}, std "
                f"{[round(s / 255, 4) for s in stored.std]} on [0, 1] pixels) is not the one asked for ({named!r}); "
                f"omit --normalization/--dataset to use the file's.")
        return stored
    if chosen is None and source.needs_normalization:
        raise ConversionError(
            f"{source.name} checkpoints normalise inside the model with constants this file does not hold: "
            f"pass --dataset cifar10 or --dataset cifar100 (the constants of the data it was trained on), or "
            f"--normalization.")
    return chosen


def _unused_norms(arguments, layer_weights):
    """The first batch norm of groups 2 and 3 where the forward never reads
    it (`shortcut="raw_input"`); the PyTorch ports keep its parameters."""
    if arguments["shortcut"] != "raw_input":
        return []
    return [name for name in ("group2_block1_bn1", "group3_block1_bn1") if name in layer_weights]


def convert_checkpoint(checkpoint, model_name=None, out=None, *, source=None, normalization=None, dataset=None,
                       ema=False, input_size=None, classifier_activation="softmax"):
    """Fills a keras_wrn model from the PyTorch checkpoint `checkpoint` and,
    with `out`, saves it as a `.keras` file (written under a temporary name,
    then renamed).

    `source` names the project whose forward the file's weights belong to
    (`convert.sources.CHECKPOINT_SOURCES`; None: the file's key layout, when
    only one source uses it). CIFAR sources build `WideResNet` with the
    file's depth, width, biases and classes (`model_name` optional: it must
    agree); ImageNet layouts fill the registered `model_name`.
    `normalization` / `dataset`: what the model normalises its pixels 0-255
    with (`resolve_normalization`); `ema`: the EMA weights.

    Returns `(model, report)`; report: layout, source, tensors read, layers
    set, the model's name. Raises CheckpointError / ConversionError /
    WeightsMismatchError naming every tensor that is missing, unmapped or of
    the wrong shape, before anything is written.
    """
    from keras_wrn.models import registry
    from keras_wrn.models.arguments import default_input_shape
    from keras_wrn.models.weights_io import assign_layer_weights

    if out is not None and not os.fspath(out).endswith(".keras"):
        raise InvalidArgumentError(f"--out must be a .keras file. Received: {out!r}")
    spec = registry.get_model_spec(model_name) if model_name is not None else None
    state = read_state_dict(checkpoint, ema=ema)
    checkpoint_source = resolve_source(source, state)
    buffers = {}
    if checkpoint_source.layout == "deepmind":
        buffers = {key: state.pop(key) for key in DEEPMIND_BUFFERS if key in state}
    layout, layer_weights = to_keras_layer_weights(state, checkpoint_source.layout)
    described = f"the {checkpoint_source.name} checkpoint {os.fspath(checkpoint)!r}"
    overrides = {"classifier_activation": classifier_activation}
    if input_size is not None:
        overrides["input_shape"] = default_input_shape(input_size)
    if checkpoint_source.variant is None:
        if spec is None:
            raise InvalidArgumentError(
                f"A {checkpoint_source.name} checkpoint fills a registered model: pass --model (e.g. "
                f"wrn-50-2-bottleneck; `keras-wrn models --family imagenet`).")
        if normalization is not None or dataset is not None:
            raise InvalidArgumentError("--normalization and --dataset apply to CIFAR sources; an ImageNet model "
                                       "takes include_preprocessing when built.")
        if "predictions" in layer_weights:
            overrides["num_classes"] = int(layer_weights["predictions"][0].shape[-1])
        else:
            overrides["include_top"] = False
        model = spec.build(**overrides)
        name, dropped = spec.name, []
    else:
        from keras_wrn.models.cifar import WideResNet

        architecture = read_cifar_architecture(layer_weights)
        arguments = builder_arguments(checkpoint_source, architecture, spec)
        preprocessing = resolve_normalization(checkpoint_source, buffers, normalization, dataset)
        dropped = _unused_norms(arguments, layer_weights)
        for unused in dropped:
            del layer_weights[unused]
        if architecture.num_classes is None:
            overrides["include_top"] = False
        else:
            overrides["num_classes"] = architecture.num_classes
        name = spec.name if spec is not None else next(iter(registered_names(arguments)), None)
        label = name or f"wrn-{architecture.depth}-{architecture.k:g}-{checkpoint_source.name}"
        model = WideResNet(**arguments, **overrides, name=label.replace("-", "_").replace(".", "_"),
                           include_preprocessing=False if preprocessing is None else preprocessing.to_dict())
        name = label
    assign_layer_weights(model, layer_weights, source=described)
    if out is not None:
        out = os.fspath(out)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with files.atomic_path(out) as tmp:
            model.save(tmp)
    report = {"layout": layout, "source": checkpoint_source.name, "tensors": len(state) + len(buffers),
              "layers": len(layer_weights), "unused_layers": dropped, "model": name, "out": out,
              "num_classes": overrides.get("num_classes"),
              "normalization": model.include_preprocessing or None}
    return model, report
