"""Checks an exported model against the Keras model it came from.

Some conversion routes fail silently (a TFLite file converted from a plain
`tf.Module` SavedModel outputs NaN; one from a JAX-backend export does not
convert), so no export is declared done before its probabilities on real
test images have been compared with the Keras model's.
"""

import dataclasses

from keras_wrn.errors import KerasWRNError

# (largest allowed max-abs difference of probabilities, smallest allowed top-1
# agreement) per export kind. Float routes must reproduce the Keras model up
# to rounding; quantised ones may move probabilities but rarely the decision.
TOLERANCES = {
    "savedmodel": (1e-5, 1.0),
    "float32": (1e-4, 0.995),
    "float16": (2e-2, 0.99),
    "dynamic": (0.25, 0.95),
    "int8": (0.25, 0.95),
}


class ExportVerificationError(KerasWRNError, RuntimeError):
    """An export's outputs disagree with the Keras model's; nothing was written."""


@dataclasses.dataclass
class Parity:
    """How an export's outputs compare with the Keras model's on `num_examples`
    test images, and the test error each reaches on them."""

    kind: str
    num_examples: int
    max_abs_diff: float
    top1_agreement: float
    test_error: float
    keras_test_error: float
    max_abs_diff_tolerance: float
    top1_agreement_tolerance: float

    @property
    def passed(self):
        # Written so that NaN differences fail.
        return (self.max_abs_diff <= self.max_abs_diff_tolerance
                and self.top1_agreement >= self.top1_agreement_tolerance)

    def to_dict(self):
        return {**dataclasses.asdict(self), "passed": self.passed}

    def summary(self):
        return (f"{self.kind}: max |p - p_keras| = {self.max_abs_diff:.3g} "
                f"(tolerance {self.max_abs_diff_tolerance:g}), top-1 agreement "
                f"{100 * self.top1_agreement:.2f}% (at least {100 * self.top1_agreement_tolerance:g}%) "
                f"on {self.num_examples} test images; test error {100 * self.test_error:.2f}% "
                f"(Keras {100 * self.keras_test_error:.2f}%)")


def compare(kind, reference, outputs, labels):
    """A `Parity` of `outputs` against `reference` probabilities, both
    `(N, classes)`, with the true `labels` `(N,)`."""
    import numpy as np

    reference = np.asarray(reference, np.float64)
    outputs = np.asarray(outputs, np.float64)
    if outputs.shape != reference.shape:
        raise ExportVerificationError(
            f"{kind}: the export outputs shape {outputs.shape}, the Keras model {reference.shape}."
        )
    labels = np.asarray(labels)
    max_diff, min_agreement = TOLERANCES[kind]
    difference = np.abs(outputs - reference).max() if len(labels) else 0.0
    if not np.isfinite(outputs).all():
        difference = float("nan")
    return Parity(
        kind=kind,
        num_examples=int(len(labels)),
        max_abs_diff=float(difference),
        top1_agreement=float((outputs.argmax(1) == reference.argmax(1)).mean()),
        test_error=float((outputs.argmax(1) != labels).mean()),
        keras_test_error=float((reference.argmax(1) != labels).mean()),
        max_abs_diff_tolerance=max_diff,
        top1_agreement_tolerance=min_agreement,
    )


def check(parity):
    """Raises `ExportVerificationError` unless `parity` passed."""
    if not parity.passed:
        raise ExportVerificationError(
            f"The export disagrees with the Keras model beyond tolerance and was not written. "
            f"{parity.summary()}"
        )
    return parity
