"""Weights files: reading their classifier width before a model is built,
loading them into it, and writing layer-weights `.npz` files.

Three kinds of file fill a keras_wrn model (`weights=PATH`): Keras'
`.weights.h5` and `.keras` files saved from the same architecture, and
layer-weights `.npz` files (`{layer name}/{index}` arrays: converted PyTorch
checkpoints and keras-wrn's own published weights, which may be float16).
`WeightsFile.read` opens a file once before the model is built: an `.npz`
is read whole (its arrays are what gets loaded), a Keras file only as far as
the classifier's shape, so that a file that does not fit is refused before a
layer exists. A damaged file, whatever the reader's exception, is one
`DamagedWeightsFileError` naming it; `evaluate` uses the same error.
"""

import contextlib
import dataclasses
import os
import zipfile

import numpy as np

from keras_wrn import files
from keras_wrn.errors import InvalidArgumentError, MissingFileError

LAYER_WEIGHTS_SUFFIX = ".npz"
KERAS_SUFFIXES = (".weights.h5", ".keras")
WEIGHTS_SUFFIXES = (*KERAS_SUFFIXES, LAYER_WEIGHTS_SUFFIX)
# PyTorch checkpoints, which keras_wrn.convert turns into layer weights.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".pth.tar", ".pt.tar", ".safetensors")


class WeightsMismatchError(InvalidArgumentError):
    """A weights file does not fit the requested model."""


class DamagedWeightsFileError(InvalidArgumentError):
    """A weights or model file that cannot be read (truncated, corrupt or another format)."""


def damaged(path, error, advice="Save, convert or download it again."):
    """The one error for a file that could not be read, naming it and `advice`."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    kind = ".keras" if path.endswith(".keras") else ".weights.h5" if path.endswith(".h5") else \
        os.path.splitext(path)[1] or "weights"
    return DamagedWeightsFileError(
        f"Cannot read {path}: it is damaged, truncated or not a {kind} file ({type(error).__name__}: "
        f"{reason[:200]}). {advice}")


@contextlib.contextmanager
def damaged_file_error(path, advice="Save, convert or download it again.", errors=()):
    """Turns the errors a damaged file raises while it is read (h5py's
    OSError, BadZipFile, a missing archive member, numpy's, and `errors`)
    into one `DamagedWeightsFileError` that names the file."""
    try:
        yield
    except (InvalidArgumentError, MissingFileError):
        raise
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, *errors) as error:
        raise damaged(path, error, advice) from None


def _dense_width(handle):
    """The output width of the last Dense layer in a Keras weights h5
    (`layers/dense*/vars/0`: Keras 3 names weights by class, and keras_wrn
    models have one Dense layer, `predictions`), or None."""
    group = handle.get("layers")
    dense = sorted(name for name in (group or {}) if name.startswith("dense"))
    return int(group[dense[-1]]["vars"]["0"].shape[-1]) if dense else None


@dataclasses.dataclass
class WeightsFile:
    """A weights file opened once: its classifier width (None: no
    classifier) and, for an `.npz`, its arrays `{layer name: [arrays]}`."""

    path: str
    num_classes: int | None
    layer_weights: dict | None = None

    @classmethod
    def read(cls, path):
        import h5py  # a Keras dependency; imported here to keep import time low

        if not os.path.isfile(path):
            raise MissingFileError(f"The weights file {path!r} does not exist.")
        with damaged_file_error(path):
            if path.endswith(LAYER_WEIGHTS_SUFFIX):
                stored = read_layer_weights(path)
                classifier = stored.get("predictions")
                return cls(path, int(classifier[0].shape[-1]) if classifier else None, stored)
            if path.endswith(".keras"):
                with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as member, \
                        h5py.File(member, "r") as handle:
                    return cls(path, _dense_width(handle))
            with h5py.File(path, "r") as handle:
                return cls(path, _dense_width(handle))

    def check_fits(self, *, include_top, num_classes):
        """Refuses a classifier that does not fit, before the model is built."""
        if include_top and self.num_classes is None:
            raise WeightsMismatchError(
                f"The weights in {self.path!r} have no classifier, so they cannot fill a model with "
                f"include_top=True; build it with include_top=False. Received: include_top=True, "
                f"weights={self.path!r}")
        if include_top and self.num_classes != num_classes:
            raise WeightsMismatchError(
                f"The weights in {self.path!r} have a classifier for {self.num_classes} classes; pass "
                f"num_classes={self.num_classes}, or include_top=False to reuse the features only. "
                f"Received: num_classes={num_classes}")

    def load_into(self, model):
        """Sets `model`'s weights from the file, with a clear error when the
        architecture differs."""
        if self.layer_weights is not None:
            assign_layer_weights(model, self.layer_weights, source=repr(self.path))
            return
        try:
            with damaged_file_error(self.path):
                model.load_weights(self.path)
        except DamagedWeightsFileError:
            raise
        except ValueError as error:
            raise WeightsMismatchError(
                f"The weights in {self.path!r} do not fit {model.name}: they were saved from a different "
                f"architecture ({error}). Build the model with the arguments it was saved with.") from error


def save_layer_weights(path, layer_weights, compressed=False):
    """Writes `{layer name: [arrays]}` as an `.npz` file, atomically
    (`files.atomic_path`), zip-deflated if `compressed` (slower to write,
    for files that are kept)."""
    flat = {f"{name}/{i}": array for name, arrays in layer_weights.items() for i, array in enumerate(arrays)}
    with files.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **flat)


def read_layer_weights(path):
    """`{layer name: [arrays]}` from a file written by `save_layer_weights`."""
    grouped = {}
    with np.load(path) as stored:
        for key in stored.files:
            name, _, index = key.rpartition("/")
            grouped.setdefault(name, {})[int(index)] = stored[key]
    return {name: [arrays[i] for i in sorted(arrays)] for name, arrays in grouped.items()}


def assign_layer_weights(model, layer_weights, source="the checkpoint"):
    """Sets the weights of `model`'s layers by name from `{layer name:
    [arrays]}`. Every layer with weights must be covered and every array must
    fit; otherwise raises WeightsMismatchError naming each problem (nothing
    is changed then). A classifier in `layer_weights` is skipped when the
    model has none (include_top=False)."""
    layers_by_name = {layer.name: layer for layer in model.layers}
    problems, assignments = [], []
    for name, arrays in layer_weights.items():
        layer = layers_by_name.get(name)
        if layer is None:
            if name != "predictions":
                problems.append(f"{name}: no such layer in {model.name}")
            continue
        expected = [tuple(w.shape) for w in layer.weights]
        received = [tuple(a.shape) for a in arrays]
        if expected != received:
            problems.append(f"{name}: {source} has shapes {received}, the layer needs {expected}")
        else:
            assignments.append((layer, arrays))
    covered = set(layer_weights)
    problems += [f"{layer.name}: not set by {source}" for layer in model.layers
                 if layer.weights and layer.name not in covered]
    if problems:
        shown = "; ".join(problems[:12]) + (f"; and {len(problems) - 12} more" if len(problems) > 12 else "")
        raise WeightsMismatchError(f"{source} does not fit {model.name}: {shown}")
    for layer, arrays in assignments:
        # float16 files (half the size) load into the layers' own dtypes.
        layer.set_weights([np.asarray(a, dtype=v.dtype) for a, v in zip(arrays, layer.weights)])
