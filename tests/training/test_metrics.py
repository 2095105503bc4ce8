"""The test error's one computation (`training.metrics`), against an
independent NumPy one: float64 log-softmax, argmax, a top-5 by sorting."""

import keras
import numpy as np
import pytest

from keras_wrn.training.metrics import ErrorRate, error_rates, error_sums, figures


def numpy_sums(logits, labels, weights):
    logits = logits.astype("float64")
    peak = logits.max(1, keepdims=True)
    log_probs = logits - (peak + np.log(np.exp(logits - peak).sum(1, keepdims=True)))
    top5 = np.argsort(-logits, axis=1)[:, :5]
    return [(-log_probs[np.arange(len(labels)), labels] * weights).sum(),
            ((logits.argmax(1) != labels) * weights).sum(),
            (~(top5 == labels[:, None]).any(1) * weights).sum(), weights.sum()]


def batch(rng, n=64, classes=100):
    logits = rng.normal(0, 3, (n, classes)).astype("float32")
    labels = rng.integers(0, classes, n).astype("int32")
    weights = (rng.random(n) > 0.25).astype("float32")  # padded examples weigh 0
    return logits, labels, weights


def test_the_sums_are_the_independent_ones():
    logits, labels, weights = batch(np.random.default_rng(0))
    labels[:8] = logits[:8].argmax(1)  # some right at top-1, the rest mostly wrong
    ours = [float(v) for v in error_sums(logits, labels, weights, top5=True)]
    assert ours == pytest.approx(numpy_sums(logits, labels, weights), rel=1e-5)
    without_top5 = [float(v) for v in error_sums(logits, labels, weights)]
    assert without_top5[2] == without_top5[1] and without_top5[3] == weights.sum()
    _, error, top5 = figures(ours)
    assert error == pytest.approx(ours[1] / weights.sum()) and top5 <= error


def test_the_keras_metrics_accumulate_the_same_sums_over_padded_batches():
    rng = np.random.default_rng(1)
    parts = [batch(rng, 32) for _ in range(3)]
    metrics = error_rates(num_classes=100)
    assert [m.name for m in metrics] == ["xent", "error", "top5_error"]
    assert [m.name for m in error_rates(num_classes=10)] == ["xent", "error"]
    for logits, labels, weights in parts:
        for metric in metrics:
            metric.update_state(labels, logits, sample_weight=weights)
    expected = np.sum([numpy_sums(*part) for part in parts], axis=0)
    assert [float(m.result()) for m in metrics] == pytest.approx(list(expected[:3] / expected[3]), rel=1e-5)
    for metric in metrics:
        metric.reset_state()
        assert float(metric.result()) == 0.0
    with pytest.raises(ValueError, match="name must be one of xent, error, top5_error"):
        ErrorRate("accuracy")


def test_a_softmax_output_is_tested_through_its_log():
    """`keras-wrn evaluate` of a model ending in softmax passes log-probabilities: the same figures."""
    logits, labels, weights = batch(np.random.default_rng(2), classes=10)
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(logits))
    assert [float(v) for v in error_sums(log_probs, labels, weights)] == \
        pytest.approx([float(v) for v in error_sums(logits, labels, weights)], rel=1e-5)
