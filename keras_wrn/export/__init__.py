"""Deployment formats, each verified against the Keras model it came from.

`export_savedmodel` writes the TF Serving layout (versioned folders with
float, uint8 and encoded-bytes signatures); `export_tflite` writes float32,
float16, dynamic-range or int8 `.tflite` files for LiteRT; both store their
parity figures in a model card beside them; `export_features` writes a
feature extractor (`keras_wrn.feature_extractor`) as a SavedModel with one
output per tap. `load_predictor` runs any of
them, or a `.keras` file or run folder, on image files. TensorFlow is
imported inside the functions; exports need `KERAS_BACKEND=tensorflow`.
"""

from keras_wrn._lazy import lazy_exports

FORMATS = ("savedmodel", "tflite")  # `keras-wrn export --format`

_EXPORTS = {
    "Predictor": "predict",
    "load_predictor": "predict",
    "SIGNATURES": "savedmodel",
    "export_features": "features",
    "export_savedmodel": "savedmodel",
    "latest_version_dir": "savedmodel",
    "ExportError": "source",
    "ExportSource": "source",
    "load_source": "source",
    "QUANTIZATIONS": "tflite",
    "TFLiteModel": "tflite",
    "export_tflite": "tflite",
    "TOLERANCES": "verify",
    "ExportVerificationError": "verify",
    "Parity": "verify",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
