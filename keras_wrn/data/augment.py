"""The paper's preprocessing as Keras layers (every backend).

Augmentation and normalisation run on the accelerator inside the training
step, as part of a small Keras model, so that the same code serves tf.data
input under tf.distribute and in-memory arrays under JAX or PyTorch. Images
arrive as uint8 or float pixels on the 0-255 scale, channels_last.
"""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="keras_wrn")
class RandomReflectCrop(layers.Layer):
    """Random crop of the reflection-padded image, back to the input size.

    The official CIFAR augmentation: pad each side by `padding` pixels by
    reflection (Torch's `ReflectionPad2d`, numpy's "reflect": the edge pixel
    is not repeated), then take a random `H x W` window, independently per
    image. Identity at inference.

    Input shape: `(N, H, W, C)` with H, W > padding. Output shape: the same.
    """

    def __init__(self, padding=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        if padding < 1:
            raise ValueError(f"padding must be >= 1. Received: padding={padding!r}")
        self.padding = int(padding)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        p = self.padding
        images = ops.cast(images, self.compute_dtype)
        height, width = images.shape[1], images.shape[2]
        padded = ops.pad(images, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")
        batch = ops.shape(images)[0]
        offsets = keras.random.randint(
            (batch, 2), 0, 2 * p + 1, seed=self.seed_generator, dtype="int32"
        )
        # One-hot row and column selectors: an exact, backend-neutral gather.
        rows = ops.one_hot(offsets[:, :1] + ops.arange(height)[None, :], height + 2 * p)
        cols = ops.one_hot(offsets[:, 1:] + ops.arange(width)[None, :], width + 2 * p)
        rows = ops.cast(rows, padded.dtype)
        cols = ops.cast(cols, padded.dtype)
        return ops.einsum("nih,nhwc,njw->nijc", rows, padded, cols)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}


def preprocessor(mean, std, *, flip=False, crop_padding=0, seed=None, name="preprocess"):
    """A Keras model that normalises `(x - mean) / std` per channel and, in
    training mode only, flips horizontally and crops with reflection padding.

    Input: `(N, H, W, C)` pixels on the 0-255 scale (uint8 or float).
    Output: float32 `(N, H, W, C)`.
    """
    steps = [
        layers.Normalization(
            mean=list(mean), variance=[s * s for s in std], name="normalize"
        )
    ]
    if flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if crop_padding:
        steps.append(RandomReflectCrop(crop_padding, seed=seed, name="reflect_crop"))
    return keras.Sequential(steps, name=name)
