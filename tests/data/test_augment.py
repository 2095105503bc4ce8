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


def test_zca_matches_pylearn2_and_whitens():
    from keras_wrn.data import ZCAWhitening, fit_zca

    rng = np.random.default_rng(0)
    # Correlated "images": a few latent factors mixed into 4x4x3 pixels.
    latent = rng.normal(size=(3000, 6))
    images = (latent @ rng.normal(size=(6, 48)) + 0.3 * rng.normal(size=(3000, 48))) * 20 + 128
    images = images.reshape(3000, 4, 4, 3)
    mean, matrix = fit_zca(images, filter_bias=0.1)
    # Reference: pylearn2's GCN(scale=55) + ZCA(filter_bias=0.1), written out.
    flat = images.reshape(3000, -1).astype(np.float64)
    flat = flat - flat.mean(1, keepdims=True)
    flat = 55.0 * flat / np.sqrt((flat**2).sum(1, keepdims=True))
    centred = flat - flat.mean(0)
    values, vectors = np.linalg.eigh(centred.T @ centred / 3000)
    expected = centred @ (vectors @ np.diag(1 / np.sqrt(np.clip(values, 0, None) + 0.1)) @ vectors.T)
    layer = ZCAWhitening(48)
    layer.set_weights([mean, matrix])
    whitened = np.asarray(layer(images.astype("float32"))).reshape(3000, -1)
    np.testing.assert_allclose(whitened, expected, rtol=2e-3, atol=2e-3)
    # Whitened: covariance eigenvalues s / (s + bias), near 1 for strong directions.
    covariance = np.cov(whitened.T, bias=True)
    np.testing.assert_allclose(np.linalg.eigvalsh(covariance)[-6:], np.sort(values / (values + 0.1))[-6:], rtol=1e-2)


def test_preprocessor_with_zca_still_augments():
    from keras_wrn.data import fit_zca

    images = np.random.default_rng(3).integers(0, 256, (64, 8, 8, 3)).astype("float32")
    zca = fit_zca(images)
    model = preprocessor((0,) * 3, (1,) * 3, flip=True, crop_padding=2, zca=zca, seed=0)
    evaluated = np.asarray(model(images, training=False))
    trained = np.asarray(model(images, training=True))
    assert evaluated.shape == trained.shape == images.shape
    assert not np.allclose(evaluated, trained)
