"""AutoAugment against torchvision's implementation (an independent one):
its policies and magnitude bins, each operation on known images, and the
layer's choice of sub-policy, probability and sign."""

import math

import numpy as np
import pytest
from keras import ops

from keras_wrn.data import autoaugment as aa
from keras_wrn.errors import InvalidArgumentError
from tests.helpers import backend_report

torch = pytest.importorskip("torch")
tv = pytest.importorskip("torchvision.transforms.v2.functional")
from torchvision.transforms import AutoAugment, AutoAugmentPolicy, InterpolationMode  # noqa: E402

NEAREST = InterpolationMode.NEAREST


def images(seed=0, shape=(4, 12, 10, 3)):
    """Integer pixels, one image with a narrow range and one flat channel."""
    x = np.random.default_rng(seed).integers(0, 256, shape).astype("float32")
    x[1:2] = np.floor(x[1:2] * 0.5 + 40)
    x[2:3, ..., 0] = 77
    return x


def run(operation, x, magnitude):
    return np.asarray(operation(ops.convert_to_tensor(x), ops.convert_to_tensor(np.full(len(x), magnitude, "float32"))))


def moved(transform, x, magnitude):
    matrices = transform(ops.convert_to_tensor(np.full(len(x), magnitude, "float32")), x.shape[1], x.shape[2])
    return np.asarray(aa.warp(ops.convert_to_tensor(x), matrices))


def torchvision_on(x, fn, *, uint8):
    tensor = torch.tensor(x).permute(0, 3, 1, 2)
    out = fn(tensor.to(torch.uint8)).float() if uint8 else fn(tensor / 255.0) * 255.0
    return out.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("name", ["cifar10", "svhn"])
def test_the_policies_and_bins_are_torchvisions(name):
    reference = AutoAugment(AutoAugmentPolicy(name))
    assert aa.POLICIES[name] == tuple(reference.policies)
    space = reference._augmentation_space(aa.MAGNITUDE_BINS, (32, 28))
    for operation, (_, magnitude_of, signed) in aa.OPERATIONS.items():
        bins, their_signed = space[operation]
        assert signed == their_signed, operation
        for b in range(aa.MAGNITUDE_BINS) if bins.ndim else [0]:
            theirs = float(bins[b]) if bins.ndim else float(bins)
            if operation in ("TranslateX", "TranslateY", "Posterize"):
                theirs = float(int(theirs))  # torchvision applies int(magnitude)
            assert magnitude_of(b, 32, 28) == pytest.approx(theirs, rel=1e-6, abs=1e-6), (operation, b)


@pytest.mark.parametrize("operation, reference, magnitude", [
    (aa.brightness, lambda t, m: tv.adjust_brightness(t, 1 + m), 0.5),
    (aa.brightness, lambda t, m: tv.adjust_brightness(t, 1 + m), -0.7),
    (aa.color, lambda t, m: tv.adjust_saturation(t, 1 + m), 0.6),
    (aa.color, lambda t, m: tv.adjust_saturation(t, 1 + m), -0.6),
    (aa.contrast, lambda t, m: tv.adjust_contrast(t, 1 + m), 0.6),
    (aa.contrast, lambda t, m: tv.adjust_contrast(t, 1 + m), -0.6),
    (aa.sharpness, lambda t, m: tv.adjust_sharpness(t, 1 + m), 0.8),
    (aa.sharpness, lambda t, m: tv.adjust_sharpness(t, 1 + m), -0.8),
    (aa.autocontrast, lambda t, m: tv.autocontrast(t), 0.0),
])
def test_each_enhancement_equals_torchvisions(operation, reference, magnitude):
    x = images()
    expected = torchvision_on(x, lambda t: reference(t, magnitude), uint8=False)
    np.testing.assert_allclose(run(operation, x, magnitude), expected, atol=1e-3)


@pytest.mark.parametrize("operation, reference, magnitude", [
    (aa.invert, lambda t, m: tv.invert(t), 0.0),
    (aa.solarize, lambda t, m: tv.solarize(t, m), 255.0 * 7 / 9),
    (aa.solarize, lambda t, m: tv.solarize(t, m), 255.0 * 1 / 9),
    (aa.posterize, lambda t, m: tv.posterize(t, int(m)), 5.0),
    (aa.posterize, lambda t, m: tv.posterize(t, int(m)), 4.0),
    (aa.equalize, lambda t, m: tv.equalize(t), 0.0),
])
def test_each_pixel_operation_equals_torchvisions_exactly(operation, reference, magnitude):
    x = images(1)
    x[3, :6] = 200  # a skewed histogram for equalize
    expected = torchvision_on(x, lambda t: reference(t, magnitude), uint8=True)
    np.testing.assert_array_equal(run(operation, x, magnitude), expected)


def _affine(**kwargs):
    arguments = {"angle": 0.0, "translate": [0, 0], "scale": 1.0, "shear": [0.0, 0.0], "interpolation": NEAREST}
    return lambda t: tv.affine(t, **{**arguments, **kwargs})


# Magnitudes of the policies' bins (shears 8/30 and -4/30, translations of
# whole pixels, rotations of 20/3 and 30 degrees) and a quarter turn.
@pytest.mark.parametrize("transform, reference, magnitude", [
    (aa.translate_x, _affine(translate=[3, 0]), 3.0),
    (aa.translate_y, _affine(translate=[0, -4]), -4.0),
    (aa.shear_x, _affine(shear=[math.degrees(math.atan(8 / 30)), 0.0], center=[0, 0]), 8 / 30),
    (aa.shear_x, _affine(shear=[math.degrees(math.atan(-4 / 30)), 0.0], center=[0, 0]), -4 / 30),
    (aa.shear_y, _affine(shear=[0.0, math.degrees(math.atan(8 / 30))], center=[0, 0]), 8 / 30),
    (aa.rotate, lambda t: tv.rotate(t, 20 / 3, interpolation=NEAREST), 20 / 3),
    (aa.rotate, lambda t: tv.rotate(t, -30.0, interpolation=NEAREST), -30.0),
    (aa.rotate, lambda t: tv.rotate(t, 90.0, interpolation=NEAREST), 90.0),
])
def test_each_geometric_operation_equals_torchvisions(transform, reference, magnitude):
    x = images(2)
    np.testing.assert_array_equal(moved(transform, x, magnitude), torchvision_on(x, reference, uint8=True))


def test_a_sub_policy_applies_its_steps_in_order():
    x = images(3, (8, 12, 10, 3))
    layer = aa.AutoAugment([(("Equalize", 1.0, None), ("Posterize", 1.0, 9))], seed=0)
    expected = run(aa.posterize, run(aa.equalize, x, 0.0), 4.0)
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), expected)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


def test_each_image_draws_its_sub_policy_its_probability_and_its_sign():
    x = np.repeat(images(4, (1, 12, 10, 3)), 2000, axis=0)
    layer = aa.AutoAugment([(("Invert", 0.3, None), ("Rotate", 1.0, 9)),
                            (("Solarize", 1.0, 0), ("Rotate", 1.0, 9))], seed=1)
    out = np.asarray(layer(x, training=True))
    outcomes = {}
    for invert in (0, 1):
        for degrees in (30.0, -30.0):
            first = run(aa.invert, x[:1], 0.0) if invert else x[:1]
            outcomes[("invert" if invert else "none", degrees)] = moved(aa.rotate, first, degrees)[0]
    for degrees in (30.0, -30.0):
        outcomes[("solarize", degrees)] = moved(aa.rotate, run(aa.solarize, x[:1], 255.0), degrees)[0]
    names = [next((key for key, image in outcomes.items() if np.array_equal(image, o)), None) for o in out]
    assert None not in names, "an image left the sub-policies' outcomes"
    counts = {key: names.count(key) for key in outcomes}
    first = sum(counts[(k, d)] for k in ("invert", "none") for d in (30.0, -30.0))
    assert abs(first / 2000 - 0.5) < 0.05  # sub-policies drawn uniformly
    assert abs(sum(counts[("invert", d)] for d in (30.0, -30.0)) / first - 0.3) < 0.05  # Invert at 0.3
    assert abs(sum(counts[(k, 30.0)] for k in ("invert", "none", "solarize")) / 2000 - 0.5) < 0.05  # signs


def test_the_cifar10_policy_keeps_pixels_in_range_and_round_trips():
    x = images(5, (64, 32, 32, 3))
    layer = aa.AutoAugment(seed=3)
    out = np.asarray(layer(x, training=True))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255
    changed = np.abs(out - x).reshape(64, -1).max(axis=1) > 0
    assert 0.5 < changed.mean() < 1.0  # most images changed; some draw no operation (probability)
    again = aa.AutoAugment.from_config(layer.get_config())
    assert again.sub_policies == aa.POLICIES["cifar10"]
    custom = aa.AutoAugment([(("Invert", 0.5, None),)])
    assert aa.AutoAugment.from_config(custom.get_config()).sub_policies == ((("Invert", 0.5, None),),)


@pytest.mark.parametrize("policy, message", [
    ("imagenet-v2", "Unknown AutoAugment policy 'imagenet-v2'; use one of cifar10, svhn"),
    ([(("Blur", 0.5, 3),)], "with an operation of ShearX"),
    ([(("Rotate", 1.5, 3),)], r"probability must lie in \[0, 1\]"),
    ([(("Rotate", 0.5, 10),)], "magnitude bin must be 0-9"),
    ([(("Rotate", 0.5, 1),), (("Rotate", 0.5, 1), ("Invert", 0.1, None))], "sub-policies of one length"),
])
def test_impossible_policies_are_refused(policy, message):
    with pytest.raises(InvalidArgumentError, match=message):
        aa.AutoAugment(policy)


def test_one_channel_images_are_their_own_grey():
    x = images(6, (4, 8, 8, 1))
    np.testing.assert_allclose(run(aa.color, x, -0.5), x, atol=1e-4)
    assert np.asarray(aa.AutoAugment(seed=0)(x, training=True)).shape == x.shape


BACKEND_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import keras, numpy as np
from keras_wrn.data import autoaugment as aa
x = np.random.default_rng(0).integers(0, 256, (16, 12, 10, 3)).astype("float32")
layer = aa.AutoAugment([(("Equalize", 1.0, None), ("ShearX", 1.0, 8)), (("Color", 1.0, 9), ("Rotate", 1.0, 2))], seed=0)
out = np.asarray(keras.ops.convert_to_numpy(layer(x, training=True)))
print(json.dumps({"backend": keras.backend.backend(), "out": out.tolist()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_layer_runs_on_jax_and_pytorch(backend):
    """Every operation path on the other backends: each image equals one of
    the outcomes computed here on TensorFlow."""
    out = np.array(backend_report(BACKEND_SCRIPT, backend)["out"], "float32")
    x = np.random.default_rng(0).integers(0, 256, (16, 12, 10, 3)).astype("float32")
    outcomes = [moved(aa.shear_x, run(aa.equalize, x, 0.0), shear) for shear in (8 / 30, -8 / 30)]
    outcomes += [moved(aa.rotate, run(aa.color, x, factor), degrees) for factor in (0.9, -0.9)
                 for degrees in (20 / 3, -20 / 3)]
    for i, image in enumerate(out):
        assert any(np.allclose(image, outcome[i], atol=1e-3) for outcome in outcomes), i
