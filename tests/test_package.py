"""The package: its public names load on first use, no backend is imported
until a model is needed, `.keras` files load after a plain `import
keras_wrn`, and every error it raises derives from `KerasWRNError`."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
import textwrap

import keras_wrn
from keras_wrn.errors import KerasWRNError


def python(code, backend="jax"):
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_import_and_registry_load_no_backend():
    loaded = python("""
        import sys
        import keras_wrn
        from keras_wrn.models import registry
        import keras_wrn.cli
        assert keras_wrn.get_model_spec("wrn-28-10").params == 36_479_194
        print(*[m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules] or ["none"])
    """, backend="tensorflow")
    assert loaded == ["none"]


def test_keras_files_load_after_a_plain_import(tmp_path):
    path = str(tmp_path / "m.keras")
    keras_wrn.WideResNet(10, 1, num_classes=3, input_shape=(8, 8, 3), stochastic_depth_rate=0.5).save(path)
    # keras_wrn imported before Keras, and a keras_wrn module the first to import Keras:
    # both register every class (models, layers, augmentation, optimizer).
    for first in ("import keras_wrn; import keras", "import keras_wrn; from keras_wrn.models import blocks; import keras"):
        loaded = python(f"""
            {first}
            model = keras.saving.load_model({path!r})
            print(type(model).__name__, sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_wrn")))
        """, backend="tensorflow")
        assert loaded[0] == "WideResNet", loaded
        assert "'keras_wrn>TorchSGD'," in loaded and "'keras_wrn>ZCAWhitening']" in loaded


def test_public_names_resolve():
    for name in keras_wrn.__all__:
        assert getattr(keras_wrn, name) is not None, name
    assert set(keras_wrn.__all__) <= set(dir(keras_wrn))


def test_every_error_keras_wrn_defines_is_a_keras_wrn_error():
    errors = []
    for module in pkgutil.walk_packages(keras_wrn.__path__, "keras_wrn."):
        if module.name.endswith(("__main__", "worker")):
            continue
        for _, value in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("keras_wrn"):
                errors.append(value)
    assert len(errors) >= 10
    assert [e for e in errors if not issubclass(e, KerasWRNError)] == []
