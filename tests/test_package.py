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
    # Also when something only asks where Keras is first, as TensorFlow does before it imports Keras
    # (measured: `import keras_wrn; import tensorflow` left Keras' registry empty).
    for first in ("import keras_wrn; import keras", "import keras_wrn; from keras_wrn.models import blocks; import keras",
                  "import keras_wrn, importlib.util; importlib.util.find_spec('keras'); import keras"):
        loaded = python(f"""
            {first}
            model = keras.saving.load_model({path!r})
            print(type(model).__name__, sorted(k for k in keras.saving.get_custom_objects() if k.startswith("keras_wrn")))
        """, backend="numpy")  # Keras' lightest backend: the registration is the same on every one
        assert loaded[0] == "WideResNet", loaded
        assert "'keras_wrn>TorchSGD'," in loaded and "'keras_wrn>ZCAWhitening']" in loaded


def test_public_names_resolve():
    for name in keras_wrn.__all__:
        assert getattr(keras_wrn, name) is not None, name
    assert set(keras_wrn.__all__) <= set(dir(keras_wrn))


def package_classes():
    """Every class defined in a keras_wrn module."""
    for module in pkgutil.walk_packages(keras_wrn.__path__, "keras_wrn."):
        if module.name.endswith(("__main__", "worker")):
            continue
        imported = importlib.import_module(module.name)
        for _, value in inspect.getmembers(imported, inspect.isclass):
            if value.__module__ == imported.__name__:
                yield value


def test_every_error_keras_wrn_defines_is_a_keras_wrn_error():
    errors = [value for value in package_classes() if issubclass(value, BaseException)]
    assert len(errors) >= 10
    assert [e for e in errors if not issubclass(e, KerasWRNError)] == []


def test_the_table_of_keras_classes_names_every_class_registered_with_keras():
    """`keras_wrn.KERAS_CLASSES` is what `.keras` files find after a plain
    import: it must hold every class the package registers, and only those."""
    import keras

    registered = {}
    for value in package_classes():
        if keras.saving.get_registered_name(value).startswith("keras_wrn>"):
            registered.setdefault(value.__module__, set()).add(value.__name__)
    assert registered == {module: set(names) for module, names in keras_wrn.KERAS_CLASSES.items()}
