"""Logit parity with PyTorch: torchvision's wide_resnet50_2 / 101_2 (random
weights, non-trivial BatchNorm statistics, eval mode), the paper's official
functional CIFAR WRN and its WRN-50-2 export, each converted from a real
`.pth` file. Runs wherever torch and torchvision are installed
(`pip install torch==2.14.1 torchvision==0.29.1`); skipped otherwise."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import keras_wrn  # noqa: E402
from keras_wrn.convert import CheckpointError, ConversionError, convert_checkpoint  # noqa: E402
from keras_wrn.models import weights_io  # noqa: E402
from tests.convert import torch_reference  # noqa: E402
from tests.helpers import official_params  # noqa: E402


def randomise_batch_norm(model, seed):
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.weight.data = 0.5 + torch.rand(c, generator=generator)
            module.bias.data = 0.1 * torch.randn(c, generator=generator)
            module.running_mean.data = 0.1 * torch.randn(c, generator=generator)
            module.running_var.data = 0.5 + torch.rand(c, generator=generator)
    return model.eval()


def assert_logits_close(keras_logits, torch_logits):
    keras_logits = np.asarray(keras_logits, np.float64)
    torch_logits = torch_logits.detach().numpy().astype(np.float64)
    scale = np.abs(torch_logits).max()
    np.testing.assert_allclose(keras_logits, torch_logits, rtol=1e-4, atol=2e-5 * scale)
    assert (keras_logits.argmax(1) == torch_logits.argmax(1)).all()


@pytest.mark.parametrize("name, builder, size", [
    ("wide_resnet50_2", keras_wrn.WideResNet50_2, 160),
    pytest.param("wide_resnet101_2", keras_wrn.WideResNet101_2, 128, marks=pytest.mark.slow),
])
def test_torchvision_logits(name, builder, size, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    torch.manual_seed(0)
    reference = randomise_batch_norm(getattr(torchvision.models, name)(weights=None), seed=1)
    path = str(tmp_path / f"{name}.pth")
    torch.save(reference.state_dict(), path)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    x = np.asarray(keras_wrn.preprocess_input(images))
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    model = builder(weights=path, input_shape=(size, size, 3), classifier_activation=None)
    assert_logits_close(model(x, training=False), expected)
    # Converted once into Keras' cache; a second build reads the cache.
    (cached,) = os.listdir(os.path.join(str(tmp_path / "keras_home"), "models", "keras_wrn"))
    assert cached.startswith(name) and cached.endswith(".keras_wrn.npz")


def test_weights_from_the_table_take_raw_pixels(tmp_path, monkeypatch):
    """A published torchvision checkpoint through the weights table, as a
    user gets it: fetched into Keras' cache (here already there), its hash
    checked, converted, and the ImageNet mean/std applied inside the model,
    which takes RGB pixels 0-255 through `get_model` alone."""
    import dataclasses

    from keras_wrn.models import weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    torch.manual_seed(4)
    reference = randomise_batch_norm(torchvision.models.resnet18(weights=None), seed=5)
    staged = str(tmp_path / "resnet18.pth")
    torch.save(reference.state_dict(), staged)
    from keras_wrn import files

    prefix = files.sha256_file(staged)[:8]
    cache = os.path.join(str(tmp_path), "models", "keras_wrn")
    os.makedirs(cache)
    os.replace(staged, os.path.join(cache, f"resnet18-{prefix}.pth"))
    record = dataclasses.replace(weights.get_weights("wrn-50-2-bottleneck", "imagenet"), model="wrn-18-1-imagenet",
                                 tag="test-random", source=f"https://weights.invalid/resnet18-{prefix}.pth",
                                 sha256=prefix)
    weights.register_weights(record)
    try:
        model = keras_wrn.get_model("wrn-18-1-imagenet", weights="test-random", input_shape=(96, 96, 3),
                                    classifier_activation=None)
    finally:
        weights.unregister_weights("wrn-18-1-imagenet", "test-random")
    pixels = np.random.default_rng(5).integers(0, 256, (2, 96, 96, 3)).astype("uint8")
    normalised = (pixels / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        expected = reference(torch.from_numpy(normalised.transpose(0, 3, 1, 2).astype("float32").copy()))
    assert_logits_close(model.predict(pixels, verbose=0), expected)


@pytest.mark.slow
def test_torchvision_checkpoint_to_keras_file_through_the_cli(tmp_path):
    from click.testing import CliRunner

    from keras_wrn.cli import main

    torch.manual_seed(2)
    reference = randomise_batch_norm(torchvision.models.wide_resnet50_2(weights=None, num_classes=7), seed=3)
    path = str(tmp_path / "fine_tuned.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}, "epoch": 3}, path)
    out = str(tmp_path / "wrn50.keras")
    result = CliRunner().invoke(main, ["convert", path, "--model", "wrn-50-2-bottleneck", "--out", out,
                                       "--input-size", "96"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "torchvision checkpoint" in result.output and "(7 classes)" in result.output
    import keras

    model = keras.saving.load_model(out)
    x = np.random.default_rng(1).normal(0, 1, (2, 96, 96, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    probabilities = np.asarray(model(x, training=False))  # the registry model ends in softmax
    np.testing.assert_allclose(probabilities, torch.softmax(expected, 1).numpy(), atol=1e-5)
    assert (probabilities.argmax(1) == expected.numpy().argmax(1)).all()
    # A checkpoint of another architecture names what does not fit.
    result = CliRunner().invoke(main, ["convert", path, "--model", "wrn-101-2-bottleneck", "--out",
                                       str(tmp_path / "x.keras")], catch_exceptions=False)
    assert result.exit_code == 1 and "conv4_block7_1_conv: not set" in result.output
    assert not os.path.exists(tmp_path / "x.keras")


def test_official_cifar_checkpoint(tmp_path):
    rng = np.random.default_rng(5)
    params = {k: torch.tensor(v, dtype=torch.float32) for k, v in official_params(16, 4, 10, rng).items()}
    path = str(tmp_path / "model.pt7.pth")
    # As the official main.py saves it: params beside the optimizer state and epoch.
    torch.save({"params": params, "epoch": 200, "optimizer": {"state": {}, "param_groups": [{"lr": 0.0008}]}}, path)
    model, report = convert_checkpoint(path, "wrn-16-4")
    assert report["layout"] == "official-cifar" and report["num_classes"] == 10
    images = rng.normal(0, 1, (3, 32, 32, 3)).astype("float32")
    with torch.no_grad():
        expected = torch_reference.official_cifar_forward(
            torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), params, 16)
    logits = keras_wrn.WideResNet(16, 4, weights=path, classifier_activation=None)(images, training=False)
    assert_logits_close(logits, expected)
    np.testing.assert_allclose(np.asarray(model(images)), torch.softmax(expected, 1).numpy(), atol=1e-5)


@pytest.mark.slow  # WRN-50-2 (69M) through the official functional code; torchvision covers the layout fast
def test_official_imagenet_export(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    params = torch_reference.official_imagenet_params(seed=4)
    path = str(tmp_path / "wide-resnet-50-2-export-5ae25d50.pth")
    torch.save(params, path)
    images = np.random.default_rng(2).normal(0, 1, (2, 128, 128, 3)).astype("float32")
    with torch.no_grad():
        expected = torch_reference.official_imagenet_forward(
            torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), params)
    model = keras_wrn.WideResNet50_2(weights=path, input_shape=(128, 128, 3), classifier_activation=None)
    assert_logits_close(model(images, training=False), expected)


def test_unsafe_and_broken_files_are_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = str(tmp_path / "evil.pth")
    torch.save({"conv1.weight": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="weights-only PyTorch checkpoint"):
        convert_checkpoint(path, "wrn-50-2-bottleneck")
    assert not os.path.exists(tmp_path / "pwned")
    (tmp_path / "broken.pth").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CheckpointError, match="could not be read"):
        convert_checkpoint(str(tmp_path / "broken.pth"), "wrn-50-2-bottleneck")
    torch.save({"features.0.weight": torch.zeros(3)}, str(tmp_path / "vgg.pth"))
    with pytest.raises(ConversionError, match="Unrecognised checkpoint layout"):
        convert_checkpoint(str(tmp_path / "vgg.pth"), "wrn-50-2-bottleneck")
    with pytest.raises(weights_io.WeightsMismatchError):
        state = torchvision.models.wide_resnet50_2(weights=None).state_dict()
        state["layer1.0.conv2.weight"] = torch.zeros(3, 3, 3, 3)
        torch.save(state, str(tmp_path / "bad_shape.pth"))
        convert_checkpoint(str(tmp_path / "bad_shape.pth"), "wrn-50-2-bottleneck")
