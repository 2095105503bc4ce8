"""XLA by measurement: the CPU described, the step timed both ways, the
faster kept, cached per kind of machine, recorded in the run folder."""

import functools
import json
import os

import pytest

pytest.importorskip("tensorflow")

from keras_wrn import provenance  # noqa: E402
from keras_wrn.training import xla_choice  # noqa: E402
from keras_wrn.training.config import TrainConfig  # noqa: E402
from tests.test_provenance import ZEN3, ZEN4  # noqa: E402


@pytest.fixture
def probe_inputs():
    from keras_wrn import data
    from keras_wrn.training.strategies import make_strategy

    config = TrainConfig.from_preset("digits", batch_size=8)
    return config, data.get_dataset_spec("digits"), make_strategy("one-device"), 8


def test_the_faster_is_kept_cached_and_not_measured_again(probe_inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_WRN_CACHE", str(tmp_path))
    # The real timing, in one short window each way instead of three.
    monkeypatch.setattr(xla_choice, "measure_step_rates",
                        functools.partial(xla_choice.measure_step_rates, windows=1, window_seconds=0.2))
    (tmp_path / xla_choice.CACHE_FILE).write_text('{"truncated": ')  # unreadable: measured again
    lines = []
    xla, record = xla_choice.choose_xla(*probe_inputs, log=lines.append)
    assert record["xla_images_per_second"] > 0 and record["graph_images_per_second"] > 0
    assert xla is (record["xla_images_per_second"] > record["graph_images_per_second"]) is record["xla"]
    assert record["source"].startswith("measured") and lines[0].startswith("Measuring")
    assert f"{record['xla_images_per_second']:g} img/s with XLA" in lines[-1]
    cache = json.loads((tmp_path / xla_choice.CACHE_FILE).read_text())
    assert list(cache) == [xla_choice.choice_key(*probe_inputs[:2], 8)]
    import keras
    import tensorflow as tf

    import keras_wrn

    for version in (f"keras_wrn {keras_wrn.__version__}", f"keras {keras.__version__}", f"tensorflow {tf.__version__}"):
        assert version in list(cache)[0]  # a new release of any of them measures again

    lines.clear()
    again, cached = xla_choice.choose_xla(*probe_inputs, log=lines.append)
    assert again is xla and cached["source"].startswith("cached in")
    assert not [line for line in lines if line.startswith("Measuring")]


def test_smoke_runs_do_not_measure_and_an_explicit_choice_wins(tmp_path):
    from keras_wrn.training.trainer import train

    run_dir = str(tmp_path / "run")
    train(TrainConfig.from_preset("digits", run_dir=run_dir, smoke=True, xla=False), verbose=False)
    saved = json.load(open(os.path.join(run_dir, "config.json")))
    assert saved["config"]["xla"] is False and saved["xla_choice"] == {"source": "requested"}
    assert saved["environment"]["cpu"]["description"] == provenance.cpu().describe()
    assert not os.path.exists(xla_choice.cache_path())


@pytest.mark.slow  # a full epoch; the rule itself is checked below, fast
def test_a_float32_run_on_a_cpu_with_native_bfloat16_says_so(tmp_path, monkeypatch, capsys):
    from keras_wrn.training.trainer import train

    (tmp_path / "cpuinfo").write_text(ZEN4)
    cpu = provenance.cpu(str(tmp_path / "cpuinfo"))
    monkeypatch.setattr(provenance, "cpu", lambda: cpu)
    train(TrainConfig.from_preset("digits", run_dir=str(tmp_path / "run"), epochs=1, batch_size=337, xla=False))
    hint = [line for line in capsys.readouterr().out.splitlines() if "bfloat16 natively" in line]
    assert len(hint) == 1 and "--precision mixed_bfloat16" in hint[0]


@pytest.mark.parametrize("cpuinfo, options, shown", [
    (ZEN4, {}, True),
    (ZEN3, {}, False),  # AVX2 only: bf16 is emulated
    (ZEN4, {"xla": True}, False),  # XLA:CPU has no bf16 convolution kernels
    (ZEN4, {"precision": "mixed_bfloat16"}, False),
    (ZEN4, {"smoke": True}, False),
], ids=["zen4", "zen3", "xla", "bf16", "smoke"])
def test_the_bfloat16_hint_is_for_float32_without_xla_on_cpus_with_bfloat16(tmp_path, cpuinfo, options, shown):
    from keras_wrn.training.distributed import bfloat16_hint

    (tmp_path / "cpuinfo").write_text(cpuinfo)
    config = TrainConfig.from_preset("digits", **{"xla": False, **options})
    assert bool(bfloat16_hint(config, True, provenance.cpu(str(tmp_path / "cpuinfo")))) is shown
    assert bfloat16_hint(config, False, provenance.cpu(str(tmp_path / "cpuinfo"))) is None  # on a GPU
