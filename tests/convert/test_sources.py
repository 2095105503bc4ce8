"""Every CIFAR source in use converted from a checkpoint as its project
saves it, against that source's PyTorch forward written in the tests
(random weights, randomised batch-norm statistics, eval mode): logits to
1e-4 on TensorFlow here and on JAX and PyTorch in their own processes,
depth and width read from the file; the wrappers real files use; what the
file contradicts refused in one line naming the source that fits."""

import os
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keras_wrn.convert import CheckpointError, ConversionError, convert_checkpoint  # noqa: E402
from keras_wrn.errors import InvalidArgumentError  # noqa: E402
from tests.convert.source_checkpoints import (  # noqa: E402
    CASES,
    DEPTH,
    K,
    expected_logits,
    reference_model,
    source_state,
    write_checkpoint,
)
from tests.helpers import backend_report  # noqa: E402

TOLERANCE = 1e-4


def converted_logits(source, path, **arguments):
    model, report = convert_checkpoint(path, source=source, classifier_activation=None,
                                       **{**CASES[source][2], **arguments})
    return model, report


@pytest.mark.parametrize("source", list(CASES))
def test_each_source_converts_with_logit_parity(source, tmp_path):
    path = str(tmp_path / f"{source}.pth")
    images, expected = write_checkpoint(source, path)
    model, report = converted_logits(source, path)
    assert (model.depth, model.k) == (DEPTH, K)  # read from the file
    assert report["source"] == source and report["num_classes"] == 10
    gap = float(np.abs(np.asarray(model(images, training=False)) - expected).max())
    assert gap < TOLERANCE, (source, gap)
    assert np.abs(expected).max() > 1.0


def test_the_converted_model_is_the_registered_variant(tmp_path):
    path = str(tmp_path / "torchssl.pth")
    images, expected = write_checkpoint("torchssl", path, depth=28)
    model, report = convert_checkpoint(path, source="torchssl", classifier_activation=None)
    assert report["unused_layers"] == ["group2_block1_bn1", "group3_block1_bn1"]
    assert report["model"] == "wrn-28-2-torchssl" and model.name == "wrn_28_2_torchssl"
    assert model.style.shortcut == "raw_input" and model.style.bn_epsilon == 1e-3
    scale = np.abs(expected).max()  # WRN-28 with random biases: logits in the hundreds
    np.testing.assert_allclose(np.asarray(model(images, training=False)), expected, atol=TOLERANCE * scale)
    assert convert_checkpoint(path, "wrn-28-2-torchssl", source="torchssl")[1]["model"] == "wrn-28-2-torchssl"
    model, _ = convert_checkpoint(path, "wrn-28-2-torchssl", source="torchssl", input_size=16)
    assert model.input_shape == (None, 16, 16, 3)


BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import numpy as np, keras
    from keras_wrn.convert import convert_checkpoint
    from tests.convert.source_checkpoints import CASES
    gaps = {}
    for source in CASES:
        data = np.load(f"{sys.argv[2]}/{source}.npz")
        model, _ = convert_checkpoint(f"{sys.argv[2]}/{source}.pth", source=source, classifier_activation=None,
                                      **CASES[source][2])
        got = keras.ops.convert_to_numpy(model(data["images"], training=False))
        gaps[source] = float(np.abs(got - data["logits"]).max())
    print(json.dumps({"backend": keras.backend.backend(), "gaps": gaps}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_source_converts_on_jax_and_torch(backend, tmp_path):
    for source in CASES:
        images, logits = write_checkpoint(source, str(tmp_path / f"{source}.pth"))
        np.savez(tmp_path / f"{source}.npz", images=images, logits=logits)
    report = backend_report(BACKEND_SCRIPT, backend, tmp_path)
    assert set(report["gaps"]) == set(CASES)
    for source, gap in report["gaps"].items():
        assert gap < TOLERANCE, (backend, source, gap)


@pytest.mark.parametrize("wrapper", ["state_dict", "net", "model", "module_prefix", "model_prefix", "legacy",
                                     "cuda", "robustbench_extras"])
def test_the_wrappers_real_files_use(wrapper, tmp_path, monkeypatch):
    """{'state_dict': ...} with training state beside it, {'net': ...},
    {'model': ...}, DataParallel's `module.` and Lightning's `model.`
    prefixes, a legacy (non-zip) pickle, tensors saved on a CUDA device
    (their storage tagged cuda:0, as torch writes them there), and
    RobustBench's unused `sub_block1.*` tensors."""
    wraps = {
        "state_dict": lambda s: {"epoch": 200, "best_prec": 95.1, "state_dict": s},
        "net": lambda s: {"net": s, "acc": 88.0},
        "model": lambda s: {"model": s, "it": 1000},
        "module_prefix": lambda s: {"state_dict": {f"module.{k}": v for k, v in s.items()}},
        "model_prefix": lambda s: {f"model.{k}": v for k, v in s.items()},
        "legacy": lambda s: {"state_dict": s},
        "cuda": lambda s: s,
        "robustbench_extras": lambda s: {**s, **{k.replace("block1.", "sub_block1.", 1): v
                                                 for k, v in s.items() if k.startswith("block1.")}},
    }
    if wrapper == "cuda":
        monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
    path = str(tmp_path / "wrapped.pth.tar")
    images, expected = write_checkpoint("xternalz", path, wrap=wraps[wrapper], legacy=wrapper == "legacy")
    if wrapper == "cuda":
        monkeypatch.undo()
        with open(path, "rb") as handle:
            assert b"cuda:0" in handle.read()
    model, _ = converted_logits("xternalz", path)
    np.testing.assert_allclose(np.asarray(model(images, training=False)), expected, atol=TOLERANCE)


def test_ema_weights_are_chosen_with_ema(tmp_path):
    raw, ema = reference_model("usb", seed=0), reference_model("usb", seed=1)
    path = str(tmp_path / "usb.pth")
    torch.save({"model": source_state("usb", raw), "ema_model": source_state("usb", ema), "it": 5}, path)
    for chosen, use_ema in ((raw, False), (ema, True)):
        images, expected = expected_logits("usb", chosen)
        model, _ = converted_logits("usb", path, ema=use_ema)
        np.testing.assert_allclose(np.asarray(model(images, training=False)), expected, atol=TOLERANCE)
    torch.save({"state_dict": source_state("usb", raw)}, path)
    with pytest.raises(CheckpointError, match="holds no EMA weights.*state_dict.*without --ema"):
        converted_logits("usb", path, ema=True)


def test_deepmind_normalisation_from_the_file_or_named(tmp_path):
    model = reference_model("deepmind")
    path = str(tmp_path / "dm.pth")
    torch.save(source_state("deepmind", model), path)
    with pytest.raises(ConversionError, match="constants this file does not hold: pass --dataset cifar10 or"):
        convert_checkpoint(path, source="deepmind")
    state = source_state("deepmind", model)
    state["mean"] = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    state["std"] = torch.tensor([0.2471, 0.2435, 0.2616]).view(3, 1, 1)
    torch.save(state, path)
    images, expected = expected_logits("deepmind", model)
    converted, report = convert_checkpoint(path, source="deepmind", classifier_activation=None)
    assert report["normalization"]["mean"][0] == pytest.approx(0.4914 * 255, rel=1e-6)
    np.testing.assert_allclose(np.asarray(converted(images, training=False)), expected, atol=TOLERANCE)
    with pytest.raises(ConversionError, match="own normalisation.*not the one asked for \\('cifar100'\\)"):
        convert_checkpoint(path, source="deepmind", dataset="cifar100")


def test_contradictions_are_refused_naming_what_fits(tmp_path):
    path = str(tmp_path / "x.pth")
    write_checkpoint("torchssl", path)
    out = tmp_path / "never.keras"
    with pytest.raises(ConversionError, match="xternalz key layout, which xternalz, fixmatch-torch, torchssl, usb"):
        convert_checkpoint(path, out=out)
    with pytest.raises(ConversionError, match="--source deepmind expects the deepmind key layout.*torchssl"):
        convert_checkpoint(path, source="deepmind", out=out)
    with pytest.raises(ConversionError, match="holds a WRN-16-2 .*--model wrn-28-10 is not one.*wrn-16-2"):
        convert_checkpoint(path, "wrn-28-10", source="xternalz", out=out)
    write_checkpoint("torchssl", str(tmp_path / "28.pth"), depth=28)
    with pytest.raises(ConversionError, match="--model wrn-28-2-usb computes the usb forward, not the torchssl one "
                                              "\\(shortcut='raw_input' here, 'projection' there\\)"):
        convert_checkpoint(str(tmp_path / "28.pth"), "wrn-28-2-usb", source="torchssl", out=out)
    state = torch.load(path, weights_only=True)
    del state["block2.layer.1.conv2.weight"]
    torch.save(state, path)
    with pytest.raises(ConversionError, match=r"block2.layer.1.conv2: the checkpoint lacks its 'weight' tensor"):
        convert_checkpoint(path, source="torchssl", out=out)
    write_checkpoint("torchssl", path)
    state = torch.load(path, weights_only=True)
    state["block2.layer.0.extra.weight"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(ConversionError, match="map to no keras_wrn layer: block2.layer.0.extra.weight"):
        convert_checkpoint(path, source="torchssl", out=out)
    with pytest.raises(InvalidArgumentError, match="--normalization or --dataset, not both"):
        write_checkpoint("xternalz", path)
        convert_checkpoint(path, source="xternalz", dataset="cifar10", normalization="zero_to_one", out=out)
    assert not out.exists()


def test_a_file_that_needs_code_is_refused(tmp_path):
    import argparse

    path = tmp_path / "with-code.pth"
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=0.1)}, path)  # what training scripts often save
    with pytest.raises(CheckpointError, match="weights-only PyTorch checkpoint.*never unpickles code"):
        convert_checkpoint(str(path), source="xternalz")


def test_the_command_line(tmp_path):
    from click.testing import CliRunner

    from keras_wrn.cli import main

    path = str(tmp_path / "usb.pth")
    write_checkpoint("usb", path)
    out = str(tmp_path / "usb.keras")
    result = CliRunner().invoke(main, ["convert", path, "--source", "usb", "--dataset", "cifar10", "--out", out])
    assert result.exit_code == 0, result.output
    assert "of wrn-16-2-usb (10 classes); it takes RGB pixels 0-255" in result.output and os.path.exists(out)
    result = CliRunner().invoke(main, ["convert", path, "--out", out])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "Pass --source" in result.output

@pytest.mark.slow

def test_a_converted_model_exports_as_savedmodel_and_tflite_with_parity(tmp_path):
    """The `.keras` file a conversion writes goes through the usual export
    checks (here on a made-up 10-class image folder of CIFAR's size)."""
    from keras_wrn.export import export_savedmodel, export_tflite
    from tests.helpers import write_folder

    path = str(tmp_path / "usb.pth")
    write_checkpoint("usb", path)
    out = str(tmp_path / "usb.keras")
    convert_checkpoint(path, source="usb", dataset="cifar10", out=out)
    write_folder(tmp_path / "images", classes=tuple("abcdefghij"), per_class=1, size=32)
    dataset = str(tmp_path / "images")
    served = export_savedmodel(out, str(tmp_path / "served"), dataset=dataset, verbose=False)
    lite = export_tflite(out, str(tmp_path / "lite"), dataset=dataset, quantize="float16", verbose=False)
    for record in (served, lite):
        assert record["parity"] and all(p["passed"] for p in record["parity"].values()), record["parity"]


REAL_CHECKPOINT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "third-party",
                               "xternalz-wrn-16-1-cifar10.pth.tar")
EXACT_IMAGES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                            "cifar10-test-exact-1017.npz")


@pytest.mark.slow
@pytest.mark.skipif(not (os.path.exists(REAL_CHECKPOINT) and os.path.exists(EXACT_IMAGES)),
                    reason="needs ../shared/data (the third-party checkpoint and the exact-pixel test images)")
def test_a_real_third_party_checkpoint(tmp_path):
    """NAD's WRN-16-1 (xternalz layout, a legacy pickle saved on CUDA,
    inputs in [0, 1]) classifies the 1,017 exact-pixel CIFAR-10 test images
    as the original PyTorch model does. Nothing made from it is kept."""
    from tests.models.variant_reference import WRN

    data = np.load(EXACT_IMAGES)
    images, labels = data["images"].astype("float32"), data["labels"]
    model, report = convert_checkpoint(REAL_CHECKPOINT, source="xternalz", normalization="zero_to_one",
                                       out=str(tmp_path / "nad.keras"))
    assert (report["model"], report["num_classes"]) == ("wrn-16-1", 10)
    keras_predictions = np.asarray(model.predict(images, batch_size=256, verbose=0)).argmax(axis=1)

    original = WRN("xternalz", 16, 1).eval()
    state = torch.load(REAL_CHECKPOINT, map_location="cpu", weights_only=True)["state_dict"]
    original.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    with torch.no_grad():
        torch_predictions = original(torch.from_numpy(images.transpose(0, 3, 1, 2) / 255.0)).numpy().argmax(axis=1)
    accuracy = float((keras_predictions == labels).mean())
    assert accuracy >= 0.85, accuracy
    assert (keras_predictions == torch_predictions).mean() >= 0.999
