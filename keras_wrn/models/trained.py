"""keras-wrn's own trained weights, by tag: `get_model("wrn-16-8", weights="cifar10")`.

They are layer-weights files (`.npz`, float16, compressed) committed with
their training record (`TRAINING.md`, curves, per-epoch log) under the
repository's `exported/` folder; they are not inside the wheel. A source checkout (or an editable
install) finds them; elsewhere the error says where to get the file, and
`weights=PATH` loads it from anywhere. Each file is checked against its
SHA-256 before it is used.
"""

import dataclasses
import hashlib
import os

from keras_wrn.models.errors import InvalidArgumentError


class TrainedWeightsError(InvalidArgumentError):
    """Trained weights that are missing or do not match their record."""


@dataclasses.dataclass(frozen=True)
class TrainedWeights:
    """One trained model: its file (relative to the repository root), hash and
    the test error `keras-wrn evaluate` measured on the data named."""

    path: str
    sha256: str
    test_error: float
    data: str
    card: str

    def locate(self, root=None):
        root = root or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return os.path.join(root, self.path)


# (registry label, tag) -> weights. Labels are the builders' ("WRN-16-8").
TRAINED = {
    ("WRN-16-8", "cifar10"): TrainedWeights(
        path="exported/cifar10-wrn-16-8/wrn-16-8-cifar10.weights.npz",
        sha256="94e01d1599edc5cbf4e8f5872466c0a34672fd9d09751daf4afe357a8f5cdbcf",
        test_error=0.0748,  # keras-wrn evaluate, float32 weights (float16 file not re-measured)
        data="the CIFAR-10 JPEG copy (50,000 train / 10,000 test images), mean/std",
        card="exported/cifar10-wrn-16-8/TRAINING.md",
    ),
}


def is_trained_tag(model_name, tag):
    return (model_name, tag) in TRAINED


def available():
    """`{label: [tags]}` of keras-wrn's trained weights."""
    found = {}
    for label, tag in TRAINED:
        found.setdefault(label, []).append(tag)
    return found


def trained_weights_file(model_name, tag, root=None):
    """The checked local path of keras-wrn's `tag` weights for `model_name`."""
    entry = TRAINED[(model_name, tag)]
    path = entry.locate(root)
    if not os.path.isfile(path):
        raise TrainedWeightsError(
            f"weights={tag!r} for {model_name} are keras-wrn's own trained weights, kept in the "
            f"repository's {entry.path} (not in the installed package), and {path!r} does not exist. "
            f"Use a clone of the keras-wrn repository (pip install -e .), or copy that file and pass "
            f"weights='<path to the .npz>'."
        )
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != entry.sha256:
        raise TrainedWeightsError(
            f"{path!r} does not match the recorded SHA-256 of the {tag!r} weights of {model_name} "
            f"({digest.hexdigest()[:12]} != {entry.sha256[:12]}); the file is damaged or was "
            f"replaced. Restore {entry.path} from the keras-wrn repository (git checkout -- {entry.path})."
        )
    return path
