"""TFLite export (float32, float16, dynamic-range or full-integer int8) and
running `.tflite` files in the LiteRT interpreter (`ai-edge-litert`).

The converted model takes float32 pixels `(N, H, W, C)` on the 0-255 scale
(uint8 pixels for `int8`, whose activations and weights are all integer) and
returns class probabilities `(N, classes)`; normalisation runs inside it.
It is converted from a single-signature SavedModel written by Keras'
ExportArchive under the TensorFlow backend, the route whose outputs match.
"""

import os
import tempfile

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.export.source import ExportError
from keras_wrn.export.verify import compare

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
REPRESENTATIVE_EXAMPLES = 256


def tflite_filename(quantize):
    return "model.tflite" if quantize == "none" else f"model_{quantize}.tflite"


def parity_kind(quantize):
    return "float32" if quantize == "none" else quantize


class TFLiteModel:
    """A `.tflite` classifier in the LiteRT interpreter: call it with float
    pixels `(N, H, W, C)` on the 0-255 scale, get float32 probabilities
    `(N, classes)`. Quantised inputs and outputs are (de)quantised with the
    file's own scales."""

    def __init__(self, path, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=path, num_threads=num_threads)
        except (ValueError, RuntimeError) as error:
            raise InvalidArgumentError(
                f"{path!r} is not a readable TFLite model ({str(error).strip()[:200]}): it is damaged, truncated or "
                f"another kind of file. Copy it again, or export it again (keras-wrn export --format tflite)."
            ) from None
        (self._input,) = self.interpreter.get_input_details()
        (self._output,) = self.interpreter.get_output_details()
        self.input_shape = tuple(int(d) for d in self._input["shape"][1:])
        self.input_dtype = self._input["dtype"]
        self._batch = None

    def _resize(self, batch):
        if batch != self._batch:
            self.interpreter.resize_tensor_input(self._input["index"], [batch, *self.input_shape])
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
            self._batch = batch

    def __call__(self, images, batch_size=64):
        import numpy as np

        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.input_shape:
            raise InvalidArgumentError(f"The TFLite model takes images of shape (N, {', '.join(map(str, self.input_shape))}); "
                             f"received {images.shape}.")
        chunks = []
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            self._resize(len(chunk))
            if np.issubdtype(self.input_dtype, np.integer):
                scale, zero_point = self._input["quantization"]
                limits = np.iinfo(self.input_dtype)
                chunk = np.clip(np.round(chunk / scale + zero_point), limits.min, limits.max)
            self.interpreter.set_tensor(self._input["index"], chunk.astype(self.input_dtype))
            self.interpreter.invoke()
            result = self.interpreter.get_tensor(self._output["index"])
            if np.issubdtype(result.dtype, np.integer):
                scale, zero_point = self._output["quantization"]
                result = (result.astype(np.float32) - zero_point) * scale
            chunks.append(result.astype(np.float32))
        return np.concatenate(chunks)


def convert(serving, quantize, representative_images=None):
    """The serving Keras model -> `.tflite` bytes with the given quantisation."""
    import tensorflow as tf

    from keras_wrn.export.savedmodel import write_savedmodel

    image_shape = tuple(serving.input_shape[1:])
    with tempfile.TemporaryDirectory() as folder:
        write_savedmodel(serving, folder, {
            "serving_default": (lambda images: {"probabilities": serving(images, training=False)},
                                [tf.TensorSpec([None, *image_shape], tf.float32, name="images")]),
        })
        converter = tf.lite.TFLiteConverter.from_saved_model(folder, signature_keys=["serving_default"])
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if quantize == "int8":
            def representative():
                for image in representative_images:
                    yield [image[None].astype("float32")]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.uint8
            converter.inference_output_type = tf.uint8
        return converter.convert()


class TFLiteWriter:
    """`out/model[_QUANTIZE].tflite`; an existing file is replaced only with
    `overwrite=True`. `int8` calibrates on training images."""

    title = "TFLite"
    writes_folder = False

    def __init__(self, quantize="none", overwrite=False):
        if quantize not in QUANTIZATIONS:
            raise ExportError(f"quantize must be one of {QUANTIZATIONS}. Received: quantize={quantize!r}")
        self.quantize = quantize
        self.overwrite = overwrite
        self.options = ("--format", "tflite", "--quantize", quantize)

    def destination(self, out):
        final = os.path.join(out, tflite_filename(self.quantize))
        if os.path.exists(final) and not self.overwrite:
            raise ExportError(f"{final} already exists; pass --overwrite to replace it, or choose another --out.")
        return final

    def write(self, job, path):
        representative = job.source.train_images(REPRESENTATIVE_EXAMPLES) if self.quantize == "int8" else None
        with open(path, "wb") as stream:
            stream.write(convert(job.serving, self.quantize, representative))

    def verify(self, job, path):
        return {"tflite": compare(parity_kind(self.quantize), job.reference, TFLiteModel(path)(job.images), job.labels)}

    def record(self, job, path, parity):
        return {
            "format": "tflite",
            "quantize": self.quantize,
            "size_bytes": os.path.getsize(path),
            "input": ["uint8" if self.quantize == "int8" else "float32", [-1, *job.source.image_shape]],
        }

    def finish(self, job, path, record):
        pass


def export_tflite(target, out, *, quantize="none", overwrite=False, **options):
    """Converts a run folder or `.keras` classifier to
    `out/model[_QUANTIZE].tflite`, verifies it in LiteRT against the Keras
    model on the dataset's test images, and records it in the model card
    (`export.driver.run_export`, whose keyword arguments `options` are:
    dataset, data_dir, weights, max_examples, command, source, verbose).

    The file is written under a temporary name and renamed into place after
    verification. Returns the export's record.
    """
    from keras_wrn.export.driver import run_export

    return run_export(TFLiteWriter(quantize, overwrite), target, out, **options)
