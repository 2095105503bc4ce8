"""Top-k predictions for image files from any form of a trained model: a run
folder, a `.keras` file, a SavedModel (a version folder or a base path, whose
highest version is used) or a `.tflite` file.

SavedModels receive the files' bytes through their `serving_bytes`
signature, exactly as a TF Serving client would send them; the other forms
decode with the same TensorFlow function (`images.decode_image`).
"""

import dataclasses
import json
import os

from keras_wrn.export.source import ExportError
from keras_wrn.training import run_folder


@dataclasses.dataclass
class Predictor:
    """`predict_files(paths)` -> probabilities `(N, classes)`."""

    kind: str
    path: str
    image_shape: tuple
    class_names: list | None
    predict_files: object

    def top_k(self, paths, k=5):
        """[{"file", "predictions": [{"class_id", "class_name", "probability"}]}]."""
        import numpy as np

        probabilities = self.predict_files(list(paths))
        results = []
        for path, row in zip(paths, probabilities):
            order = np.argsort(-row, kind="stable")[:k]
            results.append({"file": path, "predictions": [
                {"class_id": int(i),
                 "class_name": self.class_names[i] if self.class_names else str(int(i)),
                 "probability": float(row[i])}
                for i in order
            ]})
        return results


def _read_json(path):
    if os.path.exists(path):
        with open(path) as handle:
            return json.load(handle)
    return None


def load_savedmodel(version_dir):
    """`tf.saved_model.load` of a version folder, with one error naming the
    folder when it is incomplete (a `variables/` file missing) or damaged."""
    import glob

    import tensorflow as tf

    variables = os.path.join(version_dir, "variables")
    missing = [name for name, present in (
        ("variables/", os.path.isdir(variables)),
        ("variables/variables.index", os.path.isfile(os.path.join(variables, "variables.index"))),
        ("variables/variables.data-*", bool(glob.glob(os.path.join(variables, "variables.data-*")))),
    ) if not present]
    if missing:
        raise ExportError(
            f"The SavedModel {version_dir} is incomplete: {missing[0]} is missing. Copy the whole version folder "
            f"again, or export it again (keras-wrn export).")
    try:
        return tf.saved_model.load(version_dir)
    except Exception as error:  # protobuf, TensorFlow and OS errors for damaged files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(
            f"Cannot load the SavedModel {version_dir}: it is damaged ({type(error).__name__}: {reason[:200]}). "
            f"Copy the whole version folder again, or export it again (keras-wrn export).") from None


def _savedmodel_predictor(version_dir):
    import numpy as np

    from keras_wrn.export.images import read_encoded
    from keras_wrn.export.savedmodel import METADATA_FILE, run_signature

    loaded = load_savedmodel(version_dir)
    if "serving_bytes" not in loaded.signatures:
        raise ExportError(f"The SavedModel {version_dir!r} has no serving_bytes signature; it was "
                          f"not written by `keras-wrn export`.")
    metadata = _read_json(os.path.join(version_dir, METADATA_FILE)) or {}

    def predict_files(paths):
        encoded = np.array([read_encoded(path) for path in paths], dtype=object)
        return run_signature(loaded, "serving_bytes", encoded)["probabilities"]

    shape = tuple(metadata.get("input", {}).get("shape", ()))
    return Predictor("savedmodel", version_dir, shape, metadata.get("class_names"), predict_files)


def _tflite_predictor(path):
    from keras_wrn.export.card import read_card
    from keras_wrn.export.images import read_images
    from keras_wrn.export.tflite import TFLiteModel

    model = TFLiteModel(path)
    card = read_card(os.path.dirname(os.path.abspath(path))) or {}
    size, _, channels = model.input_shape

    def predict_files(paths):
        return model(read_images(paths, size, channels))

    return Predictor("tflite", path, model.input_shape, card.get("class_names"), predict_files)


def _keras_predictor(path, dataset, data_dir, weights="final"):
    from keras_wrn.export.images import read_images
    from keras_wrn.export.source import load_source, probabilities

    if path.endswith(".keras") and os.path.exists(run_folder.path(os.path.dirname(path) or ".", run_folder.CONFIG)):
        path = os.path.dirname(path) or "."  # a run folder's model.keras: use the run's preprocessing
    source = load_source(path, dataset=dataset, data_dir=data_dir, weights=weights)
    serving = source.serving_model()
    size, _, channels = source.image_shape
    try:
        names = source.test_split().class_names
    except FileNotFoundError:  # the dataset is not here: predict class ids only
        names = None

    def predict_files(paths):
        return probabilities(serving, read_images(paths, size, channels))

    return Predictor("keras", path, source.image_shape, list(names) if names else None, predict_files)


def load_predictor(path, *, dataset=None, data_dir=None, weights="final"):
    """A `Predictor` for a run folder (its `weights`: final, best, last or
    ema), `.keras`, SavedModel or `.tflite`."""
    from keras_wrn.export.savedmodel import latest_version_dir

    if os.path.isdir(path):
        version_dir = latest_version_dir(path)
        if version_dir is not None:
            return _savedmodel_predictor(version_dir)
        if os.path.exists(run_folder.path(path, run_folder.CONFIG)):
            return _keras_predictor(path, dataset, data_dir, weights)
    elif path.endswith(".tflite") and os.path.isfile(path):
        return _tflite_predictor(path)
    elif path.endswith(".keras") and os.path.isfile(path):
        return _keras_predictor(path, dataset, data_dir)
    raise ExportError(
        f"Cannot predict with {path!r}: pass a run folder, a .keras file, a SavedModel folder "
        f"(a version folder or the base path above it) or a .tflite file."
    )
