"""The paper's augmentation: flip and 4-pixel reflect-padded random crop."""

import numpy as np
import pytest

from keras_wrn.data import RandomReflectCrop, preprocessor


def windows(image, padding):
    """Every crop of the reflection-padded image, as numpy computes it."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)), mode="reflect")
    return [padded[i : i + h, j : j + w] for i in range(2 * padding + 1) for j in range(2 * padding + 1)]


def test_reflect_crop_takes_windows_of_the_reflection_padded_image():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (64, 12, 10, 3)).astype("float32")
    out = np.asarray(RandomReflectCrop(4, seed=3)(images, training=True))
    assert out.shape == images.shape
    offsets = set()
    for image, cropped in zip(images, out):
        matches = [k for k, win in enumerate(windows(image, 4)) if np.array_equal(win, cropped)]
        assert matches, "output is not a window of the reflect-padded image"
        offsets.add(matches[0])
    assert len(offsets) > 20  # offsets are drawn per image


def test_reflection_is_torch_reflection_pad():
    image = np.arange(6, dtype="float32").reshape(1, 6, 1, 1) * np.ones((1, 1, 6, 1), "float32")
    padded = np.pad(image[0], ((2, 2), (2, 2), (0, 0)), mode="reflect")
    # Torch's ReflectionPad2d and numpy "reflect" do not repeat the edge: 2 1 | 0 1 2 ...
    assert list(padded[:5, 2, 0]) == [2, 1, 0, 1, 2]
    seen = set()
    layer = RandomReflectCrop(2, seed=0)
    for _ in range(30):
        seen.add(float(np.asarray(layer(image, training=True))[0, 0, 0, 0]))
    assert seen <= {0.0, 1.0, 2.0} and len(seen) > 1


def test_crop_is_identity_at_inference():
    images = np.random.default_rng(1).uniform(0, 255, (4, 8, 8, 3)).astype("float32")
    np.testing.assert_array_equal(np.asarray(RandomReflectCrop(4)(images, training=False)), images)


def test_preprocessor_normalises_and_augments_only_in_training():
    mean, std = (125.3, 123.0, 113.9), (63.0, 62.1, 66.7)
    model = preprocessor(mean, std, flip=True, crop_padding=4, seed=0)
    images = np.random.default_rng(2).integers(0, 256, (32, 32, 32, 3)).astype("uint8")
    normalised = (images.astype("float64") - mean) / std
    evaluated = np.asarray(model(images, training=False))
    np.testing.assert_allclose(evaluated, normalised, rtol=1e-5, atol=1e-5)
    trained = np.asarray(model(images, training=True))
    flips = 0
    for src, out in zip(normalised, trained):
        found = [w for w in windows(src, 4) if np.allclose(w, out, atol=1e-4)]
        flipped = [w for w in windows(src[:, ::-1], 4) if np.allclose(w, out, atol=1e-4)]
        assert found or flipped
        flips += bool(flipped) and not found
    assert 4 < flips < 28  # about half the images are flipped


def test_bad_padding():
    with pytest.raises(ValueError, match="padding must be >= 1"):
        RandomReflectCrop(0)
