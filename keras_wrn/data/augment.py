"""The paper's preprocessing as Keras layers (every backend).

Augmentation and normalisation run on the accelerator inside the training
step, as part of a small Keras model, so that the same code serves tf.data
input under tf.distribute and in-memory arrays under JAX or PyTorch. Images
arrive as uint8 or float pixels on the 0-255 scale, channels_last.
"""

import keras
from keras import layers, ops

from keras_wrn.data import AUGMENTATIONS
from keras_wrn.data.autoaugment import AutoAugment
from keras_wrn.errors import InvalidArgumentError


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
            raise InvalidArgumentError(f"padding must be >= 1. Received: padding={padding!r}")
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


@keras.saving.register_keras_serializable(package="keras_wrn")
class Cutout(layers.Layer):
    """Cutout (DeVries & Taylor, "Improved Regularization of Convolutional
    Neural Networks with Cutout", 2017): one `size x size` square per image
    set to zero, its centre uniform over the image and the square clipped at
    the borders (their code: `y1 = clip(y - size // 2, 0, H)`,
    `y2 = clip(y + size // 2, 0, H)`). Applied after normalisation, so the
    square takes the mean pixel. Identity at inference. `size=None`: half the
    image's height, their CIFAR-10 choice (16 of 32).

    Input shape: `(N, H, W, C)`. Output shape: the same.
    """

    def __init__(self, size=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise InvalidArgumentError(f"Cutout size must be a positive integer. Received: size={size!r}")
        self.size = size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        half = (self.size or max(1, height // 2)) // 2
        centre_y = keras.random.randint((batch, 1), 0, height, seed=self.seed_generator, dtype="int32")
        centre_x = keras.random.randint((batch, 1), 0, width, seed=self.seed_generator, dtype="int32")
        rows = ops.arange(height, dtype="int32")[None, :]
        cols = ops.arange(width, dtype="int32")[None, :]
        inside_rows = ops.logical_and(rows >= centre_y - half, rows < centre_y + half)
        inside_cols = ops.logical_and(cols >= centre_x - half, cols < centre_x + half)
        square = ops.logical_and(inside_rows[:, :, None], inside_cols[:, None, :])
        return images * ops.cast(ops.logical_not(square), images.dtype)[..., None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


GCN_SCALE = 55.0  # pylearn2's make_cifar10_gcn_whitened.py, as the paper used
ZCA_FILTER_BIAS = 0.1  # pylearn2's ZCA default


def _global_contrast_normalize(flat, scale=GCN_SCALE):
    """Per image: subtract its mean, scale its L2 norm to `scale` (pylearn2's
    `global_contrast_normalize(X, scale=55.)`)."""
    import numpy as np

    centred = flat - flat.mean(axis=1, keepdims=True)
    norms = np.sqrt((centred**2).sum(axis=1, keepdims=True))
    return scale * centred / np.maximum(norms, 1e-8)


def fit_zca(images, filter_bias=ZCA_FILTER_BIAS):
    """Fits GCN + ZCA whitening on training images `(N, H, W, C)` (0-255).

    The paper's Table 4 preprocessing: pylearn2's GCN (scale 55) and ZCA,
    `W = U diag(1 / sqrt(s + filter_bias)) U^T` from the eigen-decomposition
    of the covariance of the GCN'd training set. Returns `(mean, matrix)`
    as float32 arrays of shapes `(D,)` and `(D, D)`, D = H * W * C.
    """
    import numpy as np

    flat = _global_contrast_normalize(np.asarray(images, np.float64).reshape(len(images), -1))
    mean = flat.mean(axis=0)
    centred = flat - mean
    covariance = centred.T @ centred / len(flat)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    matrix = (eigenvectors / np.sqrt(eigenvalues + filter_bias)) @ eigenvectors.T
    return mean.astype("float32"), matrix.astype("float32")


@keras.saving.register_keras_serializable(package="keras_wrn")
class ZCAWhitening(layers.Layer):
    """Global contrast normalisation then ZCA whitening with a fitted
    `(mean, matrix)` (see `fit_zca`), kept as non-trainable weights.

    Input shape: `(N, H, W, C)` pixels (0-255). Output shape: the same.
    """

    def __init__(self, dimension, **kwargs):
        super().__init__(**kwargs)
        self.dimension = int(dimension)
        self.mean = self.add_weight((self.dimension,), initializer="zeros", trainable=False, name="mean")
        self.matrix = self.add_weight((self.dimension, self.dimension), initializer="identity",
                                      trainable=False, name="matrix")

    def call(self, images):
        shape = ops.shape(images)
        flat = ops.reshape(ops.cast(images, self.compute_dtype), (shape[0], self.dimension))
        centred = flat - ops.mean(flat, axis=1, keepdims=True)
        norms = ops.sqrt(ops.sum(centred * centred, axis=1, keepdims=True))
        flat = GCN_SCALE * centred / ops.maximum(norms, 1e-8)
        return ops.reshape(ops.matmul(flat - self.mean, self.matrix), shape)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dimension": self.dimension}


def preprocessor(mean, std, *, flip=False, crop_padding=0, seed=None, zca=None, augment="paper",
                 policy="cifar10", name="preprocess"):
    """A Keras model that normalises `(x - mean) / std` per channel (or, with
    `zca=(mean, matrix)` from `fit_zca`, GCN + ZCA whitening) and, in
    training mode only, flips horizontally and crops with reflection padding.

    `augment`: `"paper"` (that alone), `"cutout"` (then a Cutout of half the
    image's side: 16x16 on CIFAR, as the SAM recipe),
    `"randaugment"` (Keras' `RandAugment`, its defaults: 2 operations of
    magnitude 0.5, on the pixels before normalisation) or `"autoaugment"`
    (the AutoAugment paper's order: flip and crop, then the learned `policy`
    on the pixels, normalisation, and Cutout).

    Input: `(N, H, W, C)` pixels on the 0-255 scale (uint8 or float).
    Output: float32 `(N, H, W, C)`.
    """
    if augment not in AUGMENTATIONS:
        raise InvalidArgumentError(f"augment must be one of {', '.join(AUGMENTATIONS)}. Received: augment={augment!r}")
    # Each random layer its own stream: with one seed, flip and crop would draw the same random bits.
    def seeded(offset):
        return None if seed is None else seed + offset

    geometry = []
    if flip:
        geometry.append(layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if crop_padding:
        geometry.append(RandomReflectCrop(crop_padding, seed=seeded(1), name="reflect_crop"))
    if zca is not None:
        normalise = ZCAWhitening(len(zca[0]), name="zca")
        normalise.set_weights([zca[0], zca[1]])
    else:
        normalise = layers.Normalization(mean=list(mean), variance=[s * s for s in std], name="normalize")
    if augment == "randaugment":
        steps = [layers.RandAugment(value_range=(0, 255), seed=seeded(2), name="randaugment"), normalise, *geometry]
    elif augment == "autoaugment":
        steps = [*geometry, AutoAugment(policy, seed=seeded(4), name="autoaugment"), normalise]
    else:
        steps = [normalise, *geometry]
    if augment in ("cutout", "autoaugment"):
        steps.append(Cutout(seed=seeded(3), name="cutout"))
    return keras.Sequential(steps, name=name)
