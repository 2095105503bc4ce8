"""Public names of a package imported on first use (PEP 562), so that the
`keras-wrn` command and the registry load no backend until one is needed."""

import importlib


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
