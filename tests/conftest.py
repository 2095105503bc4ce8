import os

import pytest

# Quiet TensorFlow's C++ start-up logs when it is the backend.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
