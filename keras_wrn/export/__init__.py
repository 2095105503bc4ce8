"""Deployment formats, each verified against the Keras model it came from.

`export_savedmodel` writes the TF Serving layout (versioned folders with
float, uint8 and encoded-bytes signatures); `export_tflite` writes float32,
float16, dynamic-range or int8 `.tflite` files for LiteRT; both store their
parity figures in a model card beside them. `load_predictor` runs any of
them, or a `.keras` file or run folder, on image files. TensorFlow is
imported inside the functions; exports need `KERAS_BACKEND=tensorflow`.
"""

from keras_wrn.export.predict import Predictor, load_predictor
from keras_wrn.export.savedmodel import SIGNATURES, export_savedmodel, latest_version_dir
from keras_wrn.export.source import ExportError, ExportSource, load_source
from keras_wrn.export.tflite import QUANTIZATIONS, TFLiteModel, export_tflite
from keras_wrn.export.verify import TOLERANCES, ExportVerificationError, Parity
