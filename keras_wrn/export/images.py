"""Encoded images (JPEG, PNG, GIF, BMP) to model inputs, in TensorFlow ops.

The same function runs inside the SavedModel's bytes signature and in
`keras-wrn predict` for the other formats, so every route sees identical
pixels.
"""

from keras_wrn.errors import InvalidArgumentError


def decode_image(encoded, image_size, channels):
    """One encoded image (scalar string tensor) -> float32 `(image_size,
    image_size, channels)` pixels on the 0-255 scale.

    Colour is converted to `channels` (RGB <-> grayscale) by the decoder;
    other sizes are resized with antialiased bilinear interpolation, an
    image already of the model's size is passed through unchanged.
    """
    import tensorflow as tf

    image = tf.io.decode_image(encoded, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    pixels = tf.cast(image, tf.float32)
    size = tf.shape(pixels)[:2]
    pixels = tf.cond(
        tf.reduce_all(tf.equal(size, [image_size, image_size])),
        lambda: pixels,
        lambda: tf.image.resize(pixels, [image_size, image_size], antialias=True),
    )
    return tf.ensure_shape(pixels, [image_size, image_size, channels])


def decode_images(encoded, image_size, channels):
    """A batch of encoded images `(N,)` string -> float32 `(N, image_size,
    image_size, channels)`."""
    import tensorflow as tf

    return tf.map_fn(
        lambda one: decode_image(one, image_size, channels),
        encoded,
        fn_output_signature=tf.TensorSpec([image_size, image_size, channels], tf.float32),
    )


def read_encoded(path):
    """The bytes of an image file; ValueError naming the file if TensorFlow
    cannot decode it."""
    import tensorflow as tf

    with open(path, "rb") as handle:
        encoded = handle.read()
    try:
        tf.io.decode_image(encoded, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        raise InvalidArgumentError(f"{path!r} is not an image TensorFlow can decode (JPEG, PNG, GIF or BMP).") from None
    return encoded


def read_images(paths, image_size, channels):
    """Image files -> float32 numpy `(N, image_size, image_size, channels)`.
    Raises ValueError naming a file that is not a readable image."""
    import numpy as np
    import tensorflow as tf

    return np.stack([decode_image(tf.constant(read_encoded(path)), image_size, channels).numpy()
                     for path in paths])


def encode_png(images):
    """uint8 `(N, H, W, C)` -> list of PNG byte strings (lossless)."""
    import tensorflow as tf

    return [tf.io.encode_png(image).numpy() for image in images]
