"""The training loss: cross-entropy on logits, with label smoothing
(Szegedy et al. 2016) through Keras' own `categorical_crossentropy`, for
integer labels."""

import keras
from keras import ops


def cross_entropy(labels, logits, label_smoothing=0.0):
    """Per-example cross-entropy of integer `labels` `(N,)` against `logits`
    `(N, K)`; with `label_smoothing` s the target is `(1 - s) * one_hot + s / K`
    (timm's `LabelSmoothingCrossEntropy`, used by SAM's and ASAM's code,
    computes the same)."""
    if not label_smoothing:
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    targets = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), ops.shape(logits)[-1], dtype=logits.dtype)
    return keras.losses.categorical_crossentropy(targets, logits, from_logits=True, label_smoothing=label_smoothing)


@keras.saving.register_keras_serializable(package="keras_wrn")
class SmoothedCrossentropy(keras.losses.Loss):
    """`cross_entropy` as a Keras loss for `Model.compile` (integer labels,
    logits)."""

    def __init__(self, label_smoothing=0.0, name="smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        return cross_entropy(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
