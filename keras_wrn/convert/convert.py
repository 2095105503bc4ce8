"""`keras-wrn convert`: a PyTorch checkpoint -> a registered keras_wrn model,
saved as `.keras`."""

import os

from keras_wrn import files
from keras_wrn.convert.checkpoint import read_state_dict
from keras_wrn.convert.mapping import to_keras_layer_weights
from keras_wrn.errors import InvalidArgumentError


def convert_checkpoint(source, model_name, out=None, *, input_size=None):
    """Builds the registered `model_name` with the checkpoint's number of
    classes, fills it from the PyTorch checkpoint `source` (torchvision/timm,
    or the paper's official layouts) and, with `out`, saves it as a `.keras`
    file (written under a temporary name, then renamed).

    Returns `(model, report)`; report: layout, tensors read, layers set.
    Raises CheckpointError / ConversionError / WeightsMismatchError naming
    every tensor that is missing, unmapped or of the wrong shape.
    """
    from keras_wrn.models import registry
    from keras_wrn.models.arguments import default_input_shape
    from keras_wrn.models.weights_io import assign_layer_weights

    spec = registry.get_model_spec(model_name)
    if out is not None and not os.fspath(out).endswith(".keras"):
        raise InvalidArgumentError(f"--out must be a .keras file. Received: {out!r}")
    state = read_state_dict(source)
    layout, layer_weights = to_keras_layer_weights(state)
    overrides = {}
    if "predictions" in layer_weights:
        overrides["num_classes"] = int(layer_weights["predictions"][0].shape[-1])
    else:
        overrides["include_top"] = False
    if input_size is not None:
        overrides["input_shape"] = default_input_shape(input_size)
    model = spec.build(**overrides)
    assign_layer_weights(model, layer_weights, source=f"the {layout} checkpoint {os.fspath(source)!r}")
    if out is not None:
        out = os.fspath(out)
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with files.atomic_path(out) as tmp:
            model.save(tmp)
    report = {"layout": layout, "tensors": len(state), "layers": len(layer_weights),
              "num_classes": overrides.get("num_classes"), "model": spec.name, "out": out}
    return model, report
