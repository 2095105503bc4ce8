import os
import subprocess
import tempfile

import pytest

# Quiet TensorFlow's C++ start-up logs when it is the backend.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Measured XLA choices (keras_wrn.training.xla_choice) go to the tests' own
# cache, so no test depends on what this machine measured before.
os.environ["KERAS_WRN_CACHE"] = tempfile.mkdtemp(prefix="keras-wrn-test-cache-")

# torchvision 0.29.1 segfaults when imported after TensorFlow 2.21 in one
# process (the other order works), so the converter parity tests' torchvision
# comes first whenever it is installed.
try:
    import torchvision  # noqa: F401
except ImportError:
    pass


@pytest.fixture
def no_layers_built(monkeypatch):
    """Fails the test if any Keras layer is constructed inside it."""
    import keras

    built = []
    original = keras.layers.Layer.__init__

    def record(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__init__", record)
    yield built
    assert not built, f"layers were built before the error: {built[:5]}"


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs: a real full disk (needs the right to mount, as root)."""
    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    if subprocess.run(["umount", str(mount)]).returncode:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)

