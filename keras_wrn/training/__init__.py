"""Training: the official optimiser and learning-rate schedules.

`optimizer` and `schedules` are pure Keras 3 (any backend); TensorFlow enters
only the input pipelines and the tf.distribute parts, imported where used.
"""

from keras_wrn._lazy import lazy_exports

_EXPORTS = {
    "TorchSGD": "optimizer",
    "epoch_step_decay": "schedules",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
