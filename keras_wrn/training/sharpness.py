"""Sharpness-aware minimisation: SAM (Foret et al., ICLR 2021) and ASAM
(Kwon et al., ICML 2021), the two-pass step Keras does not have.

Per training step, on the same augmented batch (the authors' code, davda54/sam
and SamsungLabs/ASAM):

    g  = grad L(w)                          first pass; batch-norm statistics update here only
    e  = rho * g / ||g||                    SAM
    e  = rho * T^2 g / ||T g||, T = |w| + eta on kernels and BN gammas (torch's
         `weight` parameters), T = 1 on biases and betas           ASAM, eta = 0.01
    g' = grad L(w + e)                      second pass (its statistics discarded)
    w  = optimizer(w, g')                   TorchSGD: momentum and coupled L2 on g'

The norm runs over every trainable variable at once (plus 1e-16, as
SamsungLabs/ASAM). The second pass is a `stateless_call` with the perturbed
values: the variables are never moved, and the batch-norm updates it
computes are dropped, on every backend. Under several replicas the first
gradient is summed over them first, so every replica ascends to the same point
(SAM over the global batch, as on one device).
"""

import dataclasses

import keras
from keras import ops

ASAM_ETA = 0.01
# The Keras names of what PyTorch calls a module's `weight` (ASAM scales those).
SCALED_NAMES = ("kernel", "gamma")


@dataclasses.dataclass(frozen=True)
class Sharpness:
    """SAM's radius and whether it is adaptive (ASAM)."""

    rho: float
    adaptive: bool = False
    eta: float = ASAM_ETA

    @classmethod
    def from_config(cls, config):
        """None for `optimizer="sgd"`."""
        if config.optimizer == "sgd":
            return None
        return cls(rho=config.sam_rho, adaptive=config.optimizer == "asam")

    def ascent(self, gradients, values, scaled):
        """`e` for each variable: `gradients` and current `values` in the
        order of the trainable variables; `scaled[i]` whether ASAM scales
        variable i."""
        if self.adaptive:
            factors = [ops.abs(w) + self.eta if s else None for w, s in zip(values, scaled)]
            gradients = [g if t is None else g * t for g, t in zip(gradients, factors)]
        norm = ops.sqrt(sum(ops.sum(ops.square(ops.cast(g, "float32"))) for g in gradients)) + 1e-16
        scale = self.rho / norm
        if self.adaptive:
            gradients = [g if t is None else g * t for g, t in zip(gradients, factors)]
        return [ops.cast(g * ops.cast(scale, g.dtype), w.dtype) for g, w in zip(gradients, values)]


def scaled_flags(variables):
    return [variable.name in SCALED_NAMES for variable in variables]


def tf_perturbed_gradients(model, inputs, loss_of_logits, gradients, sharpness, replicas=1):
    """TensorFlow: the gradients at `w + e` of `loss_of_logits(model(inputs))`
    given the first pass's `gradients`, computed with `stateless_call` (the
    model's variables and batch-norm statistics untouched)."""
    import tensorflow as tf

    variables = model.trainable_variables
    if replicas > 1:
        gradients = tf.distribute.get_replica_context().all_reduce("SUM", gradients)
    values = [tf.convert_to_tensor(v.value) for v in variables]
    ascent = sharpness.ascent(gradients, values, scaled_flags(variables))
    perturbed = [w + e for w, e in zip(values, ascent)]
    fixed = [tf.convert_to_tensor(v.value) for v in model.non_trainable_variables]
    with tf.GradientTape() as tape:
        tape.watch(perturbed)
        logits, _ = model.stateless_call(perturbed, fixed, inputs, training=True)
        loss = loss_of_logits(logits)
    return tape.gradient(loss, perturbed)


class SharpnessAwareSequential(keras.Sequential):
    """`Sequential([preprocess, net])` whose `fit` takes SAM's or ASAM's
    two-pass step (module docstring) on every backend: the batch is
    augmented once, the first pass updates batch-norm statistics, the
    second pass at `w + e` gives the gradients the optimizer applies.
    Metrics and the logged loss are the first pass's, as the authors log.
    """

    def __init__(self, layers=None, *, sharpness, **kwargs):
        super().__init__(layers, **kwargs)
        self.sharpness = sharpness

    def train_step(self, *args):
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_train_step(*args)
        return self._stateful_train_step(*args)

    def _jax_train_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        grad_fn = jax.value_and_grad(self.compute_loss_and_updates, has_aux=True)
        (_, aux), gradients = grad_fn(trainable, non_trainable, metrics_variables, x, y, sample_weight,
                                      training=True, optimizer_variables=optimizer_variables)
        unscaled_loss, y_pred, updated_non_trainable, metrics_variables = aux
        ascent = self.sharpness.ascent(gradients, trainable, scaled_flags(self.trainable_variables))
        # The pre-step non-trainable state again: the same augmentation draws,
        # and the second pass's batch-norm updates are dropped.
        _, gradients = grad_fn([w + e for w, e in zip(trainable, ascent)], non_trainable, metrics_variables, x, y,
                               sample_weight, training=True, optimizer_variables=optimizer_variables)
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, gradients, trainable)
        logs, metrics_variables = self._update_metrics_variables(
            metrics_variables, unscaled_loss, x, y, y_pred, sample_weight)
        return logs, (trainable, updated_non_trainable, optimizer_variables, metrics_variables)

    def _stateful_train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        preprocess, net = self.layers
        inputs = preprocess(x, training=True)
        variables = net.trainable_variables

        def loss_of(logits):
            return self._compute_loss(x=x, y=y, y_pred=logits, sample_weight=sample_weight, training=True)

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                y_pred = net(inputs, training=True)
                loss = loss_of(y_pred)
            gradients = tf_perturbed_gradients(net, inputs, loss_of, tape.gradient(loss, variables), self.sharpness)
            self.optimizer.apply_gradients(zip(gradients, variables))
        else:
            y_pred, loss = self._torch_step(net, inputs, variables, loss_of)
        self._loss_tracker.update_state(loss, sample_weight=ops.shape(x)[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _torch_step(self, net, inputs, variables, loss_of):
        """PyTorch: both passes and the update; returns the first pass's
        `(logits, loss)`."""
        import torch

        y_pred = net(inputs, training=True)
        loss = loss_of(y_pred)
        self.zero_grad()
        loss.backward()
        with torch.no_grad():
            values = [v.value for v in variables]
            ascent = self.sharpness.ascent([v.grad for v in values], values, scaled_flags(variables))
            perturbed = [(w + e).detach().requires_grad_(True) for w, e in zip(values, ascent)]
            fixed = [v.value.detach() for v in net.non_trainable_variables]
        logits, _ = net.stateless_call(perturbed, fixed, inputs, training=True)
        loss_of(logits).backward()
        with torch.no_grad():
            self.optimizer.apply([w.grad for w in perturbed], variables)
        return y_pred, loss.detach()
