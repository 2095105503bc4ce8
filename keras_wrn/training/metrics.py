"""The test error, one computation for every route: the tf.distribute
trainer's replica step, the Keras fit trainer's metric and `keras-wrn
evaluate` all sum the same four figures over the examples and divide once.

The paper reports top-1 error (top-5 as well on ImageNet, its Table 8); the
epoch record holds top-5 for datasets of 100 classes and more.
"""

import keras

TOP5_FROM_CLASSES = 100


def error_sums(logits, labels, weights=None, *, top5=False):
    """`[cross-entropy, top-1 wrong, top-5 wrong, examples]`, each summed over
    the batch (`keras.ops`, float32 scalars, any backend and inside compiled
    steps). `logits` `(N, classes)` (log-probabilities too), `labels` `(N,)`
    ints, `weights` `(N,)` (None: 1; padded examples weigh 0). Without
    `top5`, the top-5 sum repeats the top-1 sum."""
    ops = keras.ops
    logits = ops.cast(logits, "float32")
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    weights = ops.ones_like(labels, dtype="float32") if weights is None else \
        ops.cast(ops.reshape(weights, (-1,)), "float32")
    cross_entropy = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    wrong = ops.cast(ops.not_equal(ops.cast(ops.argmax(logits, axis=-1), "int32"), labels), "float32")
    wrong5 = 1.0 - ops.cast(ops.in_top_k(labels, logits, 5), "float32") if top5 else wrong
    return [ops.sum(value * weights) for value in (cross_entropy, wrong, wrong5, weights)]


def figures(sums):
    """`(loss, top-1 error, top-5 error)` of accumulated `error_sums`."""
    loss, wrong, wrong5, count = (float(value) for value in sums)
    return loss / count, wrong / count, wrong5 / count


FIGURES = ("xent", "error", "top5_error")  # the metrics' names, in `error_sums`' order


class ErrorRate(keras.metrics.Metric):
    """One figure of `error_sums` as a Keras metric, over every weighted
    example seen since the last reset: `xent` (the mean cross-entropy),
    `error` (top-1) or `top5_error`. Sample weights count, so padded
    evaluation batches (`data.feeds.EvaluationBatches`) are exact."""

    def __init__(self, name="error", **kwargs):
        if name not in FIGURES:
            raise ValueError(f"name must be one of {', '.join(FIGURES)}. Received: name={name!r}")
        super().__init__(name=name, **kwargs)
        self.index = FIGURES.index(name)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        sums = error_sums(y_pred, y_true, sample_weight, top5=self.name == "top5_error")
        self.total.assign(self.total + sums[self.index])
        self.count.assign(self.count + sums[3])

    def result(self):
        return self.total / keras.ops.maximum(self.count, 1e-12)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def error_rates(num_classes):
    """The `ErrorRate` metrics of a dataset: top-5 from `TOP5_FROM_CLASSES` classes."""
    return [ErrorRate(name) for name in FIGURES[:3 if num_classes >= TOP5_FROM_CLASSES else 2]]
