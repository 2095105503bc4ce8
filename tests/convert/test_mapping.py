"""Checkpoint layouts -> keras_wrn layers, without torch: the official CIFAR
layout against the NumPy port of the official code, the error reports, the
published-weights cache and download errors, ImageNet pre/post-processing."""

import dataclasses
import os

import numpy as np
import pytest

import keras_wrn
from keras_wrn.convert import ConversionError, detect_layout, pretrained, to_keras_layer_weights
from keras_wrn.models import weights, weights_io
from tests.helpers import official_params
from tests.models.official_reference import wrn_forward


def test_official_cifar_layout_matches_the_official_code():
    rng = np.random.default_rng(3)
    params = {k: v.astype("float32") for k, v in official_params(16, 2, 10, rng).items()}
    layout, layer_weights = to_keras_layer_weights(params)
    assert layout == "official-cifar"
    model = keras_wrn.WideResNet(16, 2, num_classes=10, classifier_activation=None)
    weights_io.assign_layer_weights(model, layer_weights)
    images = rng.normal(0, 1, (2, 32, 32, 3))
    expected = wrn_forward(images.transpose(0, 3, 1, 2), params, 16)
    got = np.asarray(model(images.astype("float32"), training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_layouts_are_detected_or_refused():
    assert detect_layout({"conv1.weight": 0, "layer1.0.conv1.weight": 0}) == "torchvision"
    assert detect_layout({"conv0.weight": 0, "conv0.bias": 0, "group0.block0.conv0.weight": 0}) == \
        "official-imagenet"
    assert detect_layout({"conv0": 0, "group0.block0.conv0": 0}) == "official-cifar"
    with pytest.raises(ConversionError, match="Unrecognised checkpoint layout.*features.0.weight"):
        detect_layout({"features.0.weight": 0, "classifier.weight": 0})


def test_every_problem_is_named():
    rng = np.random.default_rng(0)
    params = {k: v.astype("float32") for k, v in official_params(10, 1, 10, rng).items()}
    extra = {**params, "group0.block0.attention": np.zeros(3, "float32")}
    with pytest.raises(ConversionError, match="group0.block0.attention.weight"):
        to_keras_layer_weights(extra)
    model = keras_wrn.WideResNet(10, 1, num_classes=10)
    before = [w.copy() for w in model.get_weights()]
    missing = {k: v for k, v in params.items() if not k.startswith("group1.block0.bn1")}
    with pytest.raises(weights_io.WeightsMismatchError, match="group2_block1_bn2: not set"):
        weights_io.assign_layer_weights(model, to_keras_layer_weights(missing)[1])
    wrong = {**params, "group1.block0.conv1": np.zeros((64, 64, 3, 3), "float32")}
    with pytest.raises(weights_io.WeightsMismatchError,
                       match=r"group2_block1_conv2: the checkpoint has shapes \[\(3, 3, 64, 64\)\], "
                             r"the layer needs \[\(3, 3, 32, 32\)\]"):
        weights_io.assign_layer_weights(model, to_keras_layer_weights(wrong)[1])
    after = model.get_weights()
    assert all((a == b).all() for a, b in zip(before, after))  # the failed assignments changed nothing


def test_converted_layer_weights_load_through_the_builder(tmp_path):
    rng = np.random.default_rng(1)
    params = {k: v.astype("float32") for k, v in official_params(10, 2, 10, rng).items()}
    path = str(tmp_path / "wrn.npz")
    weights_io.save_layer_weights(path, to_keras_layer_weights(params)[1])
    model = keras_wrn.WideResNet(10, 2, weights=path, classifier_activation=None)
    images = rng.normal(0, 1, (1, 32, 32, 3))
    expected = wrn_forward(images.transpose(0, 3, 1, 2), params, 10)
    np.testing.assert_allclose(np.asarray(model(images.astype("float32"))), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
    features = keras_wrn.WideResNet(10, 2, weights=path, include_top=False, pooling="avg")
    assert features.output_shape == (None, 128)
    with pytest.raises(weights_io.WeightsMismatchError, match="classifier for 10 classes"):
        keras_wrn.WideResNet(10, 2, weights=path, num_classes=100)


def test_published_tags_and_offline_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    entry = weights.get_weights("wrn-50-2-bottleneck", "imagenet")
    assert entry.sha256 == "9ba9bcbe" and entry.metrics["imagenet_top1_accuracy"] == pytest.approx(81.602)
    assert weights.get_weights("wrn-50-2-bottleneck", "imagenet-paper").sha256 == "5ae25d50"
    with pytest.raises(weights.UnknownWeightsError,
                       match=r"No weights 'imagenet' for wrn-28-10\. Weights by model: wrn-16-8: cifar10; "
                             r"wrn-50-2-bottleneck: imagenet, imagenet-v1, imagenet-paper"):
        keras_wrn.WideResNet(28, 10, weights="imagenet")
    # A host that can never resolve (RFC 2606): the real download path fails,
    # quickly and clearly, and tells how to pass a local file.
    unreachable = dataclasses.replace(entry, source="https://weights.invalid/wide_resnet50_2-9ba9bcbe.pth")
    monkeypatch.setitem(weights._WEIGHTS, ("wrn-50-2-bottleneck", "imagenet"), unreachable)
    with pytest.raises(pretrained.PretrainedWeightsError,
                       match=r"Could not download .*weights='path/to/wide_resnet50_2-9ba9bcbe.pth'"):
        keras_wrn.WideResNet50_2(weights="imagenet")


def test_a_corrupt_download_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    entry = weights.get_weights("wrn-50-2-bottleneck", "imagenet")
    os.makedirs(pretrained.cache_dir())
    corrupt = os.path.join(pretrained.cache_dir(), entry.filename)
    with open(corrupt, "wb") as handle:
        handle.write(b"truncated download")
    with pytest.raises(pretrained.PretrainedWeightsError, match="corrupt.*9ba9bcbe"):
        pretrained.fetch(entry)
    assert not os.path.exists(corrupt)


def test_preprocess_and_decode():
    pixels = np.array([[[[0, 128, 255]]]], "uint8")
    got = np.asarray(keras_wrn.preprocess_input(pixels))
    expected = (np.array([0, 128, 255]) / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(got[0, 0, 0], expected, rtol=1e-6)
    names = keras_wrn.imagenet_class_names()
    assert names == weights.get_weights("wrn-50-2-bottleneck", "imagenet").class_names
    assert len(names) == 1000 and names[0] == "tench" and names[999] == "toilet tissue"
    scores = np.zeros((2, 1000))
    scores[0, 207], scores[0, 1] = 0.9, 0.1
    scores[1, 999] = 1.0
    decoded = keras_wrn.decode_predictions(scores, top=2)
    assert decoded[0] == [(207, "golden retriever", 0.9), (1, "goldfish", 0.1)]
    assert decoded[1][0][:2] == (999, "toilet tissue")
    with pytest.raises(ValueError, match=r"shape \(N, 1000\)"):
        keras_wrn.decode_predictions(np.zeros((1, 10)))


def test_published_weights_load_from_the_cache_without_network(tmp_path, monkeypatch):
    """Once converted, weights="imagenet" reads Keras' cache: no download, no
    torch; the model takes pixels 0-255 unless include_preprocessing=False."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    source = keras_wrn.WideResNet50_2(input_shape=(64, 64, 3))
    entry = weights.get_weights("wrn-50-2-bottleneck", "imagenet")
    os.makedirs(pretrained.cache_dir())
    cached = os.path.join(pretrained.cache_dir(), f"{entry.filename.rsplit('.', 1)[0]}.imagenet.keras_wrn.npz")
    weights_io.save_layer_weights(cached, {layer.name: layer.get_weights() for layer in source.layers if layer.weights})

    def no_network(*args, **kwargs):
        raise AssertionError("the cache must be used")

    monkeypatch.setattr(pretrained, "fetch", no_network)
    model = keras_wrn.WideResNet50_2(weights="imagenet", input_shape=(64, 64, 3))
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    expected = np.asarray(source(keras_wrn.preprocess_input(pixels)))
    np.testing.assert_allclose(np.asarray(model(pixels)), expected, atol=1e-6)
    outside = keras_wrn.WideResNet50_2(weights="imagenet", input_shape=(64, 64, 3), include_preprocessing=False)
    np.testing.assert_allclose(np.asarray(outside(keras_wrn.preprocess_input(pixels))), expected, atol=1e-6)
