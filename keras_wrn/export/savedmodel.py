"""SavedModel export in the layout TensorFlow Serving loads.

    OUT/                      --model_base_path of tensorflow_model_server
      1/ 2/ ...               versions; a new export takes the next number
        saved_model.pb
        variables/
        keras_wrn_export.json what was exported, and its parity figures
      model_card.json, MODEL_CARD.md

Signatures (all take any batch size N; H, W, C are the dataset's):

    serving_default  images       float32 (N, H, W, C), pixels 0-255
    serving_uint8    images       uint8   (N, H, W, C)
    serving_bytes    image_bytes  string  (N,) encoded JPEG/PNG/GIF/BMP, any
                                  size (decoded and resized in the graph;
                                  REST clients send {"b64": "..."})

each returning `probabilities` float32 (N, classes), `top_class_ids` int32
(N, K), `top_probabilities` float32 (N, K) and `top_class_names` string
(N, K), K = min(5, classes). The dataset's normalisation (or GCN + ZCA
whitening) runs inside the graph.
"""

import json
import os

from keras_wrn.export.source import ExportError
from keras_wrn.export.verify import compare

SIGNATURES = ("serving_default", "serving_uint8", "serving_bytes")
METADATA_FILE = "keras_wrn_export.json"
BYTES_CHECK_EXAMPLES = 64


def existing_versions(base):
    """The numeric version folders under a model base path, ascending."""
    if not os.path.isdir(base):
        return []
    return sorted(int(name) for name in os.listdir(base)
                  if name.isdigit() and os.path.isdir(os.path.join(base, name)))


def latest_version_dir(path):
    """`path` itself when it holds a saved_model.pb, else its highest
    numeric version folder that does; None when neither."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    for version in reversed(existing_versions(path)):
        candidate = os.path.join(path, str(version))
        if os.path.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    return None


def _serving_functions(serving, image_shape, class_names, top_k):
    """{signature name: (function, input signature)} around the serving model."""
    import tensorflow as tf

    from keras_wrn.export.images import decode_images

    size, _, channels = image_shape
    names = tf.constant([str(name) for name in class_names])

    def outputs(pixels):
        probabilities = serving(pixels, training=False)
        top = tf.math.top_k(probabilities, k=top_k)
        return {
            "probabilities": probabilities,
            "top_class_ids": top.indices,
            "top_probabilities": top.values,
            "top_class_names": tf.gather(names, top.indices),
        }

    def checked(images, signature):
        # Signature calls do not enforce the declared shape: say what is wrong
        # before a convolution fails on it.
        check = tf.debugging.assert_equal(
            tf.shape(images)[1:], tf.constant(image_shape, tf.int32),
            message=f"{signature} takes images of shape (N, {size}, {size}, {channels}); "
                    f"resize them, or send encoded images to serving_bytes. Received shape",
        )
        with tf.control_dependencies([check]):
            return tf.cast(tf.identity(images), tf.float32)

    def from_float(images):
        return outputs(checked(images, "serving_default"))

    def from_uint8(images):
        return outputs(checked(images, "serving_uint8"))

    def from_bytes(image_bytes):
        return outputs(decode_images(image_bytes, size, channels))

    shape = [None, *image_shape]
    return {
        "serving_default": (from_float, [tf.TensorSpec(shape, tf.float32, name="images")]),
        "serving_uint8": (from_uint8, [tf.TensorSpec(shape, tf.uint8, name="images")]),
        "serving_bytes": (from_bytes, [tf.TensorSpec([None], tf.string, name="image_bytes")]),
    }


def write_savedmodel(serving, path, endpoints):
    """Writes `serving` with `endpoints` ({name: (fn, input_signature)}) as a
    SavedModel through Keras' ExportArchive (the route that also converts to
    TFLite correctly)."""
    import keras

    # Not `archive.track(serving)`: the endpoints track the variables they
    # use, and tracking the model as well stores every weight twice.
    archive = keras.export.ExportArchive()
    for name, (function, signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature=signature)
    archive.write_out(path, verbose=False)
    assets = os.path.join(path, "assets")
    if os.path.isdir(assets) and not os.listdir(assets):
        os.rmdir(assets)  # git keeps no empty folders: make the export what a clone holds


def run_signature(loaded, name, batch, batch_size=256):
    """Calls signature `name` of a loaded SavedModel over `batch` in chunks;
    returns {output name: numpy array}."""
    import numpy as np
    import tensorflow as tf

    function = loaded.signatures[name]
    (argument,) = function.structured_input_signature[1].keys()
    chunks = []
    for start in range(0, len(batch), batch_size):
        chunk = batch[start:start + batch_size]
        result = function(**{argument: tf.constant(chunk)})
        chunks.append({key: value.numpy() for key, value in result.items()})
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def verify_savedmodel(path, images, labels, reference):
    """Parity of every signature of the SavedModel at `path` with the Keras
    probabilities `reference` on uint8 test `images`: {signature: Parity}."""
    import numpy as np
    import tensorflow as tf

    from keras_wrn.export.images import encode_png

    loaded = tf.saved_model.load(path)
    missing = set(SIGNATURES) - set(loaded.signatures.keys())
    if missing:
        raise ExportError(f"The SavedModel at {path!r} lacks the signatures {sorted(missing)}.")
    count = min(len(images), BYTES_CHECK_EXAMPLES)
    encoded = np.array(encode_png(images[:count]), dtype=object)
    return {
        "serving_default": compare("savedmodel", reference,
                                   run_signature(loaded, "serving_default", images.astype("float32"))["probabilities"], labels),
        "serving_uint8": compare("savedmodel", reference,
                                 run_signature(loaded, "serving_uint8", images)["probabilities"], labels),
        "serving_bytes": compare("savedmodel", reference[:count],
                                 run_signature(loaded, "serving_bytes", encoded)["probabilities"], labels[:count]),
    }


class SavedModelWriter:
    """Version `version` (default: the next free one) of a TF Serving model
    base path; an existing version is never replaced."""

    title = "SavedModel"
    writes_folder = True
    options = ("--format", "savedmodel")

    def __init__(self, version=None):
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise ExportError(f"version must be a positive integer. Received: version={version!r}")
        self.version = version

    def destination(self, out):
        taken = existing_versions(out)
        next_free = (taken[-1] + 1) if taken else 1
        self.version = self.version or next_free
        final = os.path.join(out, str(self.version))
        if os.path.exists(final):
            raise ExportError(
                f"{final} already exists; exported versions are never overwritten. Leave out "
                f"--version to write version {next_free}, or choose another --out.")
        return final

    def write(self, job, path):
        top_k = min(5, job.source.dataset.num_classes)
        write_savedmodel(job.serving, path,
                         _serving_functions(job.serving, job.source.image_shape, job.class_names, top_k))

    def verify(self, job, path):
        return verify_savedmodel(path, job.images, job.labels, job.reference)

    def record(self, job, path, parity):
        shape = [-1, *job.source.image_shape]
        return {
            "format": "savedmodel",
            "version": self.version,
            "signatures": {
                "serving_default": {"inputs": {"images": ["float32", shape]}},
                "serving_uint8": {"inputs": {"images": ["uint8", shape]}},
                "serving_bytes": {"inputs": {"image_bytes": ["string", [-1]]}},
                "outputs": ["probabilities", "top_class_ids", "top_probabilities", "top_class_names"],
            },
        }

    def finish(self, job, path, record):
        from keras_wrn.export import card

        with open(os.path.join(path, METADATA_FILE), "w") as handle:
            json.dump({**card.source_record(job.source, job.class_names), "export": record}, handle, indent=2)


def export_savedmodel(target, out, *, version=None, **options):
    """Exports a run folder or `.keras` classifier as version `version`
    (default: the next free one) of the SavedModel base path `out`, verifies
    every signature against the Keras model on the dataset's test images and
    updates the model card in `out` (`export.driver.run_export`, whose
    keyword arguments `options` are: dataset, data_dir, weights,
    max_examples, command, source, verbose).

    Written into a temporary folder inside `out` and renamed into place only
    after verification: a server watching `out` never sees a partial or
    unverified version. Returns the export's record (path, version,
    signatures, parity).
    """
    from keras_wrn.export.driver import run_export

    return run_export(SavedModelWriter(version), target, out, **options)
