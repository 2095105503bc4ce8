"""keras-wrn's cache folder: `KERAS_WRN_CACHE`, default `~/.cache/keras-wrn`
(or `$XDG_CACHE_HOME/keras-wrn`). It holds what is measured or unpacked once
per machine: the XLA choices (`training.xla_choice`) and datasets unpacked
from archives (`data.unpacked`). Deleting it costs only time."""

import os

CACHE_ENV = "KERAS_WRN_CACHE"


def cache_dir(*parts):
    """A path inside the cache folder (not created)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "keras-wrn")
    return os.path.join(root, *parts)
