"""The package's import-time machinery, kept to two small pieces.

- `lazy_exports`: public names imported on first use (PEP 562), so that
  `import keras_wrn`, the registry and `keras-wrn --help` load no backend.
- `register_with_keras`: the Keras classes that `.keras` files name are in
  Keras' registry whenever Keras is loaded, so a `.keras` file of a keras_wrn
  model loads after a plain `import keras_wrn`. Keras looks a class up by its
  registered name (`keras_wrn>WideResNet`) and only calls its `from_config`;
  until the class's module is imported (its decorator then registers the
  class itself, as keras-hub's and timm's do), a `_Deferred` entry stands in
  and imports it on that call. Nothing of ours is imported while Keras loads,
  so there is no import order to get wrong.
"""

import importlib
import importlib.abc
import importlib.util
import sys

KERAS_PACKAGE = "keras_wrn"  # `register_keras_serializable(package=...)` of every class


def lazy_exports(package, exports):
    """`__getattr__` and `__dir__` for `package`, whose public names map to
    the submodule defining them: `{"TorchSGD": "optimizer", ...}`."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


class _Deferred:
    """Keras' registry entry for a keras_wrn class whose module is not
    imported yet: deserialising (or calling) it imports the module."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def resolve(self):
        return getattr(importlib.import_module(self.module), self.name)

    def from_config(self, *args, **kwargs):
        return self.resolve().from_config(*args, **kwargs)

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self):
        return f"<{self.module}.{self.name}, imported on first use>"


def _fill_keras_registry(classes):
    import keras

    registry = keras.saving.get_custom_objects()
    for module, names in classes.items():
        for name in names:
            registry.setdefault(f"{KERAS_PACKAGE}>{name}", _Deferred(module, name))


class _WhenKerasLoads(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when `keras` is imported, it wraps Keras'
    loader so that `then()` runs right after Keras has loaded. It stays in
    `sys.meta_path` until then: a mere `importlib.util.find_spec("keras")`
    (TensorFlow asks before it imports Keras) loads nothing."""

    def __init__(self, then):
        self.then = then
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "keras" or self._finding:
            return None
        self._finding = True  # the search below asks the other finders, not this one again
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is not None and spec.loader is not None and "keras" not in sys.modules:
            execute = spec.loader.exec_module

            def exec_module(module):
                execute(module)
                if self in sys.meta_path:
                    sys.meta_path.remove(self)
                self.then()

            spec.loader.exec_module = exec_module
        return spec


def register_with_keras(classes):
    """Registers `classes` (`{module: (class name, ...)}`) with Keras now if
    it is loaded, else as soon as it is."""
    def register():
        _fill_keras_registry(classes)

    if "keras" in sys.modules:
        register()
    else:
        sys.meta_path.insert(0, _WhenKerasLoads(register))
