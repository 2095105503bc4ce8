"""AutoAugment's learned policies as a Keras layer (every backend).

Cubuk et al., "AutoAugment: Learning Augmentation Policies from Data", CVPR
2019: each image takes one of 25 sub-policies at random; a sub-policy is two
operations, each applied with its probability at a fixed magnitude (one of
10 bins; shear, translation, rotation and the enhancements flip their sign
with probability 1/2). The policies and the magnitude bins are the authors'
as torchvision writes them (`torchvision.transforms.AutoAugment`, which the
tests read back), with its geometry: nearest neighbour, a zero fill, shears
about the top-left corner, integer translations of up to 150/331 of the side.

Each operation runs on the whole batch with a magnitude per image, on float
pixels (0-255) without rounding to uint8 between the two operations, and each
image keeps the result of its own; everything is `keras.ops`, so the layer
runs inside the training step as the rest of the preprocessing does.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from keras_wrn.errors import InvalidArgumentError

MAGNITUDE_BINS = 10

# The learned policies: (operation, probability, magnitude bin or None) twice.
POLICIES = {
    "cifar10": (
        (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
        (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
        (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
        (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
        (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
        (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
        (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
        (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
        (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
        (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
        (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
        (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
        (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
        (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
        (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
        (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
        (("Color", 0.9, 9), ("Equalize", 0.6, None)),
        (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
        (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
        (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
        (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
        (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
        (("Equalize", 0.8, None), ("Invert", 0.1, None)),
        (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
    ),
    "svhn": (
        (("ShearX", 0.9, 4), ("Invert", 0.2, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.6, None), ("Solarize", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("AutoContrast", 0.8, None)),
        (("ShearY", 0.9, 8), ("Invert", 0.4, None)),
        (("ShearY", 0.9, 5), ("Solarize", 0.2, 6)),
        (("Invert", 0.9, None), ("AutoContrast", 0.8, None)),
        (("Equalize", 0.6, None), ("Rotate", 0.9, 3)),
        (("ShearX", 0.9, 4), ("Solarize", 0.3, 3)),
        (("ShearY", 0.8, 8), ("Invert", 0.7, None)),
        (("Equalize", 0.9, None), ("TranslateY", 0.6, 6)),
        (("Invert", 0.9, None), ("Equalize", 0.6, None)),
        (("Contrast", 0.3, 3), ("Rotate", 0.8, 4)),
        (("Invert", 0.8, None), ("TranslateY", 0.0, 2)),
        (("ShearY", 0.7, 6), ("Solarize", 0.4, 8)),
        (("Invert", 0.6, None), ("Rotate", 0.8, 4)),
        (("ShearY", 0.3, 7), ("TranslateX", 0.9, 3)),
        (("ShearX", 0.1, 6), ("Invert", 0.6, None)),
        (("Solarize", 0.7, 2), ("TranslateY", 0.6, 7)),
        (("ShearY", 0.8, 4), ("Invert", 0.8, None)),
        (("ShearX", 0.7, 9), ("TranslateY", 0.8, 3)),
        (("ShearY", 0.8, 5), ("AutoContrast", 0.7, None)),
        (("ShearX", 0.7, 2), ("Invert", 0.1, None)),
    ),
}
# The policy each dataset trains with (`--augment autoaugment`): SVHN's own,
# the CIFAR-10 one (which the authors also used for CIFAR-100) elsewhere.
DATASET_POLICIES = {"svhn": "svhn"}


def policy_for(dataset):
    """The name of the policy `dataset` trains with."""
    return DATASET_POLICIES.get(dataset, "cifar10")


def _per_image(values):
    return ops.reshape(values, (-1, 1, 1, 1))


def _blend(degenerate, images, factor):
    """PIL's ImageEnhance: `degenerate + factor * (images - degenerate)`."""
    return ops.clip(degenerate + _per_image(factor) * (images - degenerate), 0.0, 255.0)


def _grayscale(images):
    """ITU-R 601-2 luma (PIL's "L" and torchvision's weights), `(N, H, W, 1)`;
    a one-channel image is its own."""
    if images.shape[-1] == 1:
        return images
    return 0.2989 * images[..., 0:1] + 0.587 * images[..., 1:2] + 0.114 * images[..., 2:3]


def brightness(images, magnitude):
    return _blend(ops.zeros_like(images), images, 1.0 + magnitude)


def color(images, magnitude):
    return _blend(_grayscale(images), images, 1.0 + magnitude)


def contrast(images, magnitude):
    mean = ops.mean(_grayscale(images), axis=(1, 2, 3), keepdims=True)
    return _blend(mean, images, 1.0 + magnitude)


def sharpness(images, magnitude):
    """Blend with PIL's SMOOTH filter (3x3, centre 5, the rest 1, over 13);
    the border pixels keep their values, as PIL's filter leaves them."""
    height, width = images.shape[1], images.shape[2]
    window = [images[:, dy:height - 2 + dy, dx:width - 2 + dx] for dy in range(3) for dx in range(3)]
    smooth = (sum(window) + 4.0 * window[4]) / 13.0
    border = np.ones((1, height, width, 1), "float32")
    border[:, 1:-1, 1:-1] = 0.0
    degenerate = ops.pad(smooth, [[0, 0], [1, 1], [1, 1], [0, 0]]) + images * border
    return _blend(degenerate, images, 1.0 + magnitude)


def posterize(images, bits):
    """Keeps the `bits` most significant bits of each 8-bit value."""
    step = _per_image(ops.power(2.0, 8.0 - bits))
    return ops.floor(images / step) * step


def solarize(images, threshold):
    """Inverts the pixels at or above `threshold`."""
    return ops.where(images >= _per_image(threshold), 255.0 - images, images)


def invert(images, magnitude):
    return 255.0 - images


def autocontrast(images, magnitude):
    """Stretches each channel of each image to 0-255 (unchanged if flat)."""
    low = ops.min(images, axis=(1, 2), keepdims=True)
    high = ops.max(images, axis=(1, 2), keepdims=True)
    flat = high <= low
    scale = ops.where(flat, 1.0, 255.0 / ops.maximum(high - low, 1e-6))
    return ops.clip((images - ops.where(flat, 0.0, low)) * scale, 0.0, 255.0)


def _histogram(levels):
    """Counts of each of 256 levels per row of `levels` `(R, P)` int, `(R, 256)`:
    as a product of the two 16-way one-hots of the level's nibbles, which
    compiles everywhere (XLA and jit alike) and needs 32 values per pixel."""
    high = ops.one_hot(levels // 16, 16, dtype="float32")
    low = ops.one_hot(levels % 16, 16, dtype="float32")
    return ops.reshape(ops.einsum("rpa,rpb->rab", high, low), (-1, 256))


def equalize(images, magnitude):
    """PIL's ImageOps.equalize per channel: the histogram's cumulative sum,
    without the brightest value's count, spread over 256 levels (a channel
    whose step would be 0 is unchanged)."""
    batch, height, width, channels = ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    levels = ops.cast(ops.floor(ops.clip(images, 0.0, 255.0)), "int32")
    rows = ops.reshape(ops.transpose(levels, (0, 3, 1, 2)), (-1, height * width))
    histogram = _histogram(rows)
    brightest = ops.take_along_axis(histogram, ops.max(rows, axis=1, keepdims=True), axis=1)
    step = ops.floor((height * width - brightest) / 255.0)
    table = ops.floor((ops.cumsum(histogram, axis=1) + ops.floor(step / 2.0)) / ops.maximum(step, 1.0))
    table = ops.clip(ops.pad(table[:, :-1], [[0, 0], [1, 0]]), 0.0, 255.0)
    equalized = ops.where(step > 0, ops.take_along_axis(table, rows, axis=1), ops.cast(rows, "float32"))
    return ops.transpose(ops.reshape(equalized, (batch, channels, height, width)), (0, 2, 3, 1))


def warp(images, transforms, fill_value=0.0):
    """Each image resampled at the source points of its `(8,)` transform
    (`ops.image.affine_transform`'s convention, pixel centres on integers),
    nearest neighbour rounding half to even (torchvision's), `fill_value`
    outside. A gather, where TensorFlow's own kernel does not compile with XLA.

    `images`: `(N, H, W, C)`; `transforms`: `(N, 8)`, the last two zero."""
    batch, height, width, channels = ops.shape(images)[0], images.shape[1], images.shape[2], images.shape[3]
    ys, xs = np.meshgrid(np.arange(height, dtype="float32"), np.arange(width, dtype="float32"), indexing="ij")
    ys, xs = ys.reshape(1, -1), xs.reshape(1, -1)
    source_x = ops.round(transforms[:, 0:1] * xs + transforms[:, 1:2] * ys + transforms[:, 2:3])
    source_y = ops.round(transforms[:, 3:4] * xs + transforms[:, 4:5] * ys + transforms[:, 5:6])
    inside = (source_x >= 0) & (source_x <= width - 1) & (source_y >= 0) & (source_y <= height - 1)
    index = ops.cast(ops.clip(source_y, 0, height - 1) * width + ops.clip(source_x, 0, width - 1), "int32")
    index = ops.broadcast_to(index[:, :, None], (batch, height * width, channels))
    flat = ops.reshape(images, (batch, height * width, channels))
    moved = ops.where(inside[:, :, None], ops.take_along_axis(flat, index, axis=1), fill_value)
    return ops.reshape(moved, (batch, height, width, channels))


def _affine(a0, a1, a2, b0, b1, b2):
    """`(N, 8)` projective transforms mapping an output pixel to its source."""
    zero = ops.zeros_like(a0)
    return ops.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)


def shear_x(magnitude, height, width):
    one, zero = ops.ones_like(magnitude), ops.zeros_like(magnitude)
    return _affine(one, magnitude, 0.5 * magnitude, zero, one, zero)


def shear_y(magnitude, height, width):
    one, zero = ops.ones_like(magnitude), ops.zeros_like(magnitude)
    return _affine(one, zero, zero, magnitude, one, 0.5 * magnitude)


def translate_x(magnitude, height, width):
    one, zero = ops.ones_like(magnitude), ops.zeros_like(magnitude)
    return _affine(one, zero, -magnitude, zero, one, zero)


def translate_y(magnitude, height, width):
    one, zero = ops.ones_like(magnitude), ops.zeros_like(magnitude)
    return _affine(one, zero, zero, zero, one, -magnitude)


def rotate(degrees, height, width):
    """Counter-clockwise about the image's centre."""
    angle = degrees * (math.pi / 180.0)
    cos, sin = ops.cos(angle), ops.sin(angle)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return _affine(cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy)


# Name: (function, magnitude of bin b for an H x W image, signed). Geometric
# operations give the transform; the others the images.
GEOMETRIC = {
    "ShearX": (shear_x, lambda b, h, w: 0.3 * b / 9, True),
    "ShearY": (shear_y, lambda b, h, w: 0.3 * b / 9, True),
    "TranslateX": (translate_x, lambda b, h, w: float(int(150.0 / 331.0 * w * b / 9)), True),
    "TranslateY": (translate_y, lambda b, h, w: float(int(150.0 / 331.0 * h * b / 9)), True),
    "Rotate": (rotate, lambda b, h, w: 30.0 * b / 9, True),
}
PIXEL = {
    "Brightness": (brightness, lambda b, h, w: 0.9 * b / 9, True),
    "Color": (color, lambda b, h, w: 0.9 * b / 9, True),
    "Contrast": (contrast, lambda b, h, w: 0.9 * b / 9, True),
    "Sharpness": (sharpness, lambda b, h, w: 0.9 * b / 9, True),
    "Posterize": (posterize, lambda b, h, w: float(8 - round(b / ((MAGNITUDE_BINS - 1) / 4))), False),
    "Solarize": (solarize, lambda b, h, w: 255.0 * (1 - b / 9), False),
    "AutoContrast": (autocontrast, lambda b, h, w: 0.0, False),
    "Equalize": (equalize, lambda b, h, w: 0.0, False),
    "Invert": (invert, lambda b, h, w: 0.0, False),
}
OPERATIONS = {**GEOMETRIC, **PIXEL}
NAMES = tuple(OPERATIONS)


def check_policy(policy):
    """The sub-policies of `policy` (a name of POLICIES or a sequence of
    sub-policies), checked; raises InvalidArgumentError naming the fix."""
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise InvalidArgumentError(f"Unknown AutoAugment policy {policy!r}; use one of {', '.join(POLICIES)}.")
        return POLICIES[policy]
    policy = tuple(tuple(tuple(step) for step in sub_policy) for sub_policy in policy)
    for sub_policy in policy:
        for step in sub_policy:
            name, probability, magnitude = step if len(step) == 3 else (None, None, None)
            if name not in OPERATIONS or isinstance(probability, (str, bool)) or probability is None:
                raise InvalidArgumentError(f"AutoAugment step {step!r}: write (operation, probability, "
                                           f"magnitude bin) with an operation of {', '.join(NAMES)}.")
            if not 0.0 <= probability <= 1.0:
                raise InvalidArgumentError(f"AutoAugment step {step!r}: the probability must lie in [0, 1].")
            if magnitude is not None and magnitude not in range(MAGNITUDE_BINS):
                raise InvalidArgumentError(f"AutoAugment step {step!r}: the magnitude bin must be 0-9 or None.")
    if not policy or len({len(sub_policy) for sub_policy in policy}) != 1:
        raise InvalidArgumentError("An AutoAugment policy needs sub-policies of one length, at least one.")
    return policy


@keras.saving.register_keras_serializable(package="keras_wrn")
class AutoAugment(layers.Layer):
    """AutoAugment with a learned policy: `"cifar10"` (default), `"svhn"`,
    or sub-policies written as `((operation, probability, bin), ...)`.
    Identity at inference.

    Input shape: `(N, H, W, C)` pixels on the 0-255 scale, C 3 (or 1). Output shape: the
    same, float.
    """

    def __init__(self, policy="cifar10", fill_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.sub_policies = check_policy(policy)
        self.policy = policy if isinstance(policy, str) else [list(map(list, s)) for s in self.sub_policies]
        self.fill_value = float(fill_value)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _table(self, stage, height, width):
        """Per sub-policy: operation index, probability, magnitude, signed."""
        steps = [sub_policy[stage] for sub_policy in self.sub_policies]
        index = np.array([NAMES.index(name) for name, _, _ in steps], "int32")
        probability = np.array([p for _, p, _ in steps], "float32")
        magnitude = np.array([OPERATIONS[name][1](b or 0, height, width) for name, _, b in steps], "float32")
        # Bins of operations without a magnitude are ignored, as torchvision does.
        signed = np.array([OPERATIONS[name][2] for name, _, _ in steps], bool)
        return index, probability, magnitude, signed

    def call(self, images, training=None):
        if not training:
            return images
        images = ops.cast(images, self.compute_dtype)
        batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
        choice = keras.random.randint((batch,), 0, len(self.sub_policies), seed=self.seed_generator)
        for stage in range(len(self.sub_policies[0])):
            index, probability, magnitude, signed = self._table(stage, height, width)
            draws = keras.random.uniform((batch, 2), seed=self.seed_generator)
            applied = draws[:, 0] < ops.take(probability, choice)
            sign = ops.where(ops.logical_and(ops.take(signed, choice), draws[:, 1] < 0.5), -1.0, 1.0)
            operation = ops.where(applied, ops.take(index, choice), -1)
            present = sorted({NAMES[i] for i in index})
            images = self._apply(images, operation, ops.take(magnitude, choice) * sign, present)
        return images

    def _apply(self, images, operation, magnitude, present):
        """Each image through its own operation (index -1: none)."""
        height, width = images.shape[1], images.shape[2]
        out = images
        geometric = [name for name in present if name in GEOMETRIC]
        if geometric:
            identity = np.array([[1, 0, 0, 0, 1, 0, 0, 0]], "float32")
            transform = ops.tile(ops.convert_to_tensor(identity), (ops.shape(images)[0], 1))
            chosen = ops.zeros_like(magnitude, dtype="bool")
            for name in geometric:
                mine = operation == NAMES.index(name)
                chosen = ops.logical_or(chosen, mine)
                transform = ops.where(mine[:, None], GEOMETRIC[name][0](magnitude, height, width), transform)
            moved = warp(images, transform, self.fill_value)
            out = ops.where(_per_image(chosen), moved, out)
        for name in present:
            if name in PIXEL:
                mine = _per_image(operation == NAMES.index(name))
                out = ops.where(mine, PIXEL[name][0](images, magnitude), out)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "policy": self.policy, "fill_value": self.fill_value, "seed": self.seed}
