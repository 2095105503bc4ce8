"""Impossible requests fail with a clear message before any layer is built."""

import os

import numpy as np
import pytest

import keras_wrn
from keras_wrn.models.weights_io import WeightsMismatchError


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"depth": 27, "k": 10}, "depth must be 6 * N + 4"),
        ({"depth": 4, "k": 10}, "not a valid depth"),
        ({"depth": 28.0, "k": 10}, "not a valid depth"),
        ({"depth": 22, "k": 2, "block_type": "B(1,3,1)", "deepening_factor": 3}, "cannot be combined"),
        ({"depth": 40, "k": 2, "deepening_factor": 0}, "positive integer"),
        ({"depth": 28, "k": 0}, "k must be > 0"),
        ({"depth": 28, "k": -2}, "k must be > 0"),
        ({"depth": 28, "k": 10, "block_type": "B(5,5)"}, "Unknown block type"),
        ({"depth": 28, "k": 10, "block_type": "B(3,x)"}, "B(3,1,3)"),
        ({"depth": 28, "k": 10, "input_shape": (3, 3, 3)}, "at least 4x4"),
        ({"depth": 28, "k": 10, "input_shape": (32, 32)}, "rank 3"),
        ({"depth": 28, "k": 10, "pooling": "sum"}, "pooling must be"),
        ({"depth": 28, "k": 10, "num_classes": 0}, "num_classes must be a positive integer"),
        ({"depth": 28, "k": 10, "dropout_rate": 1.0}, "dropout_rate must be in [0, 1)"),
        ({"depth": 28, "k": 10, "weights": "imagenet"}, "No weights 'imagenet' for wrn-28-10"),
        ({"depth": 28, "k": 10, "weights": "model.onnx"}, "`.weights.h5` or `.keras`"),
    ],
)
def test_bad_cifar_arguments(no_layers_built, kwargs, message):
    with pytest.raises(ValueError) as error:
        keras_wrn.WideResNet(**kwargs)
    assert message in str(error.value)
    assert "Received:" in str(error.value)


def test_depth_error_lists_valid_depths(no_layers_built):
    with pytest.raises(ValueError, match=r"10, 16, 22, 28, 34, 40"):
        keras_wrn.WideResNet(30, 4)


def test_bad_imagenet_arguments(no_layers_built):
    with pytest.raises(ValueError, match="at least 32x32"):
        keras_wrn.WideResNet50_2(input_shape=(16, 16, 3))
    with pytest.raises(ValueError, match="width factor must be > 0"):
        keras_wrn.WideResNet18(width=0)
    with pytest.raises(ValueError, match="Unknown block"):
        keras_wrn.ImageNetWideResNet(block="pyramid")


def test_unknown_model_lists_registered_names():
    with pytest.raises(keras_wrn.UnknownModelError) as error:
        keras_wrn.get_model("wrn-28-11")
    text = str(error.value)
    assert "Did you mean" in text and "wrn-28-10" in text and "wrn-50-2-bottleneck" in text


def test_missing_weights_file(no_layers_built, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        keras_wrn.WideResNet(16, 1, weights=str(tmp_path / "nope.weights.h5"))


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    model = keras_wrn.WideResNet(10, 1, num_classes=5)
    path = str(folder / "wrn-10-1.weights.h5")
    model.save_weights(path)
    return model, path


def test_weights_round_trip_and_features(saved_weights):
    source, path = saved_weights
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    loaded = keras_wrn.WideResNet(10, 1, num_classes=5, weights=path)
    np.testing.assert_array_equal(np.asarray(source(images)), np.asarray(loaded(images)))
    features = keras_wrn.WideResNet(10, 1, include_top=False, pooling="avg", weights=path)
    reference = keras_wrn.WideResNet(10, 1, include_top=False, pooling="avg")
    for x in reference.layers:
        if x.weights:
            x.set_weights(source.get_layer(x.name).get_weights())
    np.testing.assert_allclose(np.asarray(features(images)), np.asarray(reference(images)), atol=1e-6)


def test_num_classes_that_does_not_fit_weights(saved_weights, no_layers_built):
    _, path = saved_weights
    with pytest.raises(WeightsMismatchError, match="num_classes=5"):
        keras_wrn.WideResNet(10, 1, num_classes=10, weights=path)


def test_weights_of_another_architecture(saved_weights):
    _, path = saved_weights
    with pytest.raises(WeightsMismatchError, match="different architecture"):
        keras_wrn.WideResNet(10, 2, num_classes=5, weights=path)


@pytest.mark.parametrize("build", [
    lambda: keras_wrn.WideResNet(16, 4, dropout=0.3),
    lambda: keras_wrn.WideResNet18(widht=2.0),
    lambda: keras_wrn.WideResNet34(dropout_rate=0.3),
    lambda: keras_wrn.WideResNet50_2(pretrained=True),
    lambda: keras_wrn.WideResNet101_2(classes=10),
    lambda: keras_wrn.ImageNetWideResNet("basic", (1, 1, 1, 1), includ_top=False),
    lambda: keras_wrn.get_model("wrn-16-8", include_preprocesing=True),
    lambda: keras_wrn.get_model("wrn-50-2-bottleneck", drop_rate=0.1),
], ids=["WideResNet", "WideResNet18", "WideResNet34", "WideResNet50_2", "WideResNet101_2",
        "ImageNetWideResNet", "get_model-cifar", "get_model-imagenet"])
def test_an_unknown_argument_is_refused_naming_the_valid_ones(build, no_layers_built):
    with pytest.raises(keras_wrn.InvalidArgumentError, match="does not take") as raised:
        build()
    assert "Its arguments: " in str(raised.value) and "Received: " in str(raised.value)


def test_the_refusal_suggests_the_argument_meant():
    with pytest.raises(ValueError, match=r"'dropout' \(did you mean 'dropout_rate'\?\)"):
        keras_wrn.WideResNet(16, 4, dropout=0.3)


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras", ".weights.npz"])
def test_a_damaged_weights_file_is_named(tmp_path, suffix):
    from keras_wrn.models.weights_io import DamagedWeightsFileError, save_layer_weights

    model = keras_wrn.WideResNet(10, 1, num_classes=3, input_shape=(8, 8, 3))
    path = str(tmp_path / f"wrn{suffix}")
    if suffix == ".weights.npz":
        save_layer_weights(path, {layer.name: layer.get_weights() for layer in model.layers if layer.weights})
    elif suffix == ".keras":
        model.save(path)
    else:
        model.save_weights(path)
    with open(path, "rb") as handle:
        head = handle.read(os.path.getsize(path) // 2)
    with open(path, "wb") as handle:
        handle.write(head)
    with pytest.raises(DamagedWeightsFileError, match=f"Cannot read {path}: it is damaged"):
        keras_wrn.WideResNet(10, 1, num_classes=3, input_shape=(8, 8, 3), weights=path)
