"""Strategy choice and where XLA can compile the step."""

import pytest

tf = pytest.importorskip("tensorflow")

from keras_wrn.training.strategies import make_strategy, resolve_xla, xla_blocker  # noqa: E402


class FakeExtended:
    def __init__(self, devices):
        self.worker_devices = devices


class StrategyOn:
    """Only what `xla_blocker` reads; several real replicas need a fresh process
    (tests/training/test_trainer.py runs those)."""

    def __init__(self, devices, replicas=None):
        self.extended = FakeExtended(devices)
        self.num_replicas_in_sync = replicas or len(devices)


def test_one_device_compiles_by_default():
    strategy = make_strategy("one-device")
    assert xla_blocker(strategy) is None
    assert resolve_xla(None, strategy) is True
    assert resolve_xla(False, strategy) is False and resolve_xla(True, strategy) is True


@pytest.mark.parametrize("devices, replicas, blocked", [
    (["/job:localhost/replica:0/task:0/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:1"], 2, True),
    (["/job:worker/replica:0/task:0/device:CPU:0"], 2, True),  # multi-worker on CPU hosts
    (["/job:localhost/replica:0/task:0/device:GPU:0", "/job:localhost/replica:0/task:0/device:GPU:1"], 2, False),
    (["/job:worker/replica:0/task:1/device:GPU:0"], 4, False),
])
def test_several_replicas_on_cpus_run_without_xla(devices, replicas, blocked):
    strategy = StrategyOn(devices, replicas)
    assert (xla_blocker(strategy) is not None) == blocked
    assert resolve_xla(None, strategy) is not blocked
    if blocked:
        with pytest.raises(ValueError, match=r"--no-xla"):
            resolve_xla(True, strategy)
    assert resolve_xla(False, strategy) is False
