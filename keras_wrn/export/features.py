"""Feature extractors (`keras_wrn.feature_extractor`) as SavedModels: one
output per tap, in the layout TensorFlow Serving loads.

    OUT/1/saved_model.pb, variables/, keras_wrn_export.json

    serving_default  images  float32 (N, H, W, C), what the model takes
    serving_uint8    images  uint8   (N, H, W, C)  (models that normalise
                                     pixels 0-255 inside)

each returning `{tap: float32 feature map}`. Written into a temporary folder
inside `out`, checked tap by tap against the Keras model, and renamed into
place only then; an existing version is never replaced.
"""

import json
import os

import numpy as np

from keras_wrn import files
from keras_wrn.errors import FileWriteError
from keras_wrn.export.driver import staged
from keras_wrn.export.savedmodel import METADATA_FILE, SavedModelWriter, run_signature, write_savedmodel
from keras_wrn.export.source import EXPORT_FULL_DISK, ExportError, require_tensorflow_backend

# Largest |SavedModel - Keras| allowed on a tap, relative to the tap's largest |value|.
FEATURE_TOLERANCE = 1e-4
CHECK_EXAMPLES = 8


def _endpoints(extractor):
    import keras
    import tensorflow as tf

    shape = [None, *extractor.input_shape[1:]]

    def from_float(images):
        return {tap: tf.cast(value, tf.float32) for tap, value in extractor(images, training=False).items()}

    def from_uint8(images):
        return from_float(tf.cast(images, tf.float32))

    endpoints = {"serving_default": (from_float, [tf.TensorSpec(shape, tf.float32, name="images")])}
    if keras.config.image_data_format() == "channels_last" and extractor.input_shape[-1] == 3:
        endpoints["serving_uint8"] = (from_uint8, [tf.TensorSpec(shape, tf.uint8, name="images")])
    return endpoints


def _check(path, extractor, images):
    """{signature: {tap: relative max difference}}; raises ExportError past
    `FEATURE_TOLERANCE`."""
    import keras
    import tensorflow as tf

    loaded = tf.saved_model.load(path)
    parity = {}
    for signature in _endpoints(extractor):
        batch = images if signature == "serving_default" else np.clip(images, 0, 255).astype("uint8")
        reference = {tap: keras.ops.convert_to_numpy(value)
                     for tap, value in extractor(batch.astype("float32"), training=False).items()}
        outputs = run_signature(loaded, signature, batch)
        gaps = {}
        for tap, expected in reference.items():
            if tap not in outputs or outputs[tap].shape != expected.shape:
                raise ExportError(f"The SavedModel's {signature} lacks the tap {tap!r} of shape {expected.shape}.")
            scale = max(float(np.abs(expected).max()), 1e-12)
            gaps[tap] = float(np.abs(outputs[tap] - expected).max()) / scale
            if gaps[tap] > FEATURE_TOLERANCE:
                raise ExportError(
                    f"The SavedModel's {signature} differs from the Keras model on the tap {tap!r} by "
                    f"{gaps[tap]:.2e} of its range (allowed {FEATURE_TOLERANCE:g}); nothing was published.")
        parity[signature] = gaps
    return parity


def export_features(extractor, out, *, version=None, images=None, verbose=True):
    """Writes the feature extractor `extractor` (a model with dict outputs,
    `keras_wrn.feature_extractor`) as version `version` (default: the next
    free one) of the SavedModel base path `out`, verified tap by tap on
    `images` (default: random pixels 0-255 of its input shape).

    Returns `{"path", "version", "taps": {tap: shape}, "parity"}`.
    """
    require_tensorflow_backend("SavedModel export")
    if not isinstance(extractor.output, dict):
        raise ExportError(
            f"export_features takes a model whose output is a dict of named features "
            f"(keras_wrn.feature_extractor(model, taps=[...])). Received: {extractor.name} with a "
            f"{type(extractor.output).__name__} output")
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (CHECK_EXAMPLES, *extractor.input_shape[1:]))
    images = np.asarray(images, dtype="float32")
    out = os.path.abspath(out)
    writer = SavedModelWriter(version)
    final = writer.destination(out)
    taps = {tap: [-1, *tensor.shape[1:]] for tap, tensor in extractor.output.items()}
    try:
        os.makedirs(out, exist_ok=True)
        files.remove_stale(out)
        with staged(out, final, folder=True) as tmp:
            write_savedmodel(extractor, tmp, _endpoints(extractor))
            parity = _check(tmp, extractor, images)
            record = {"format": "savedmodel-features", "model": extractor.name, "version": writer.version,
                      "signatures": list(parity), "taps": taps, "parity": parity}
            with open(os.path.join(tmp, METADATA_FILE), "w") as handle:
                json.dump(record, handle, indent=2)
    except Exception as error:  # a full disk: TensorFlow's SaveV2 raises an OpError, files an OSError
        cause = files.as_os_error(error)
        if cause is None or isinstance(error, FileWriteError):
            raise
        raise files.write_error(final, cause, full_disk=EXPORT_FULL_DISK) from None
    if verbose:
        worst = max(gap for gaps in parity.values() for gap in gaps.values())
        print(f"{len(taps)} taps ({', '.join(taps)}) match the Keras model to {worst:.1e} of their range")
        print(f"Wrote {final}")
    return {**record, "path": final}
