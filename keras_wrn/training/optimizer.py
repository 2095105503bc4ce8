"""SGD exactly as Torch applies it in the official WRN training code."""

import keras
from keras import ops

from keras_wrn.errors import InvalidArgumentError


@keras.saving.register_keras_serializable(package="keras_wrn")
class TorchSGD(keras.optimizers.Optimizer):
    """SGD with (Nesterov) momentum and coupled L2 weight decay, as `torch.optim.SGD`.

    The official WRN recipe (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, section 3):
    lr 0.1, Nesterov momentum 0.9, weight decay 5e-4 on every parameter,
    BN gamma/beta included. Per parameter p with gradient g, at each step:

        d = g + l2_weight_decay * p           # coupled L2, before momentum
        buf = momentum * buf + d              # buf starts at 0 (= d at step 1)
        p = p - lr * (d + momentum * buf)     # nesterov
        p = p - lr * buf                      # plain momentum

    This differs from `keras.optimizers.SGD`, which folds the learning rate
    into its momentum buffer (so a learning-rate drop acts differently), and
    from Keras' `weight_decay=`, which is decoupled (AdamW-style) and not
    added to the gradient.

    Args:
        learning_rate: float or a `LearningRateSchedule` (see
            `keras_wrn.training.epoch_step_decay`).
        momentum: momentum factor (>= 0).
        nesterov: Nesterov momentum (needs momentum > 0).
        l2_weight_decay: coefficient of the coupled L2 term (>= 0).
        **kwargs: other `keras.optimizers.Optimizer` arguments (`clipnorm`,
            `loss_scale_factor`, ...); `weight_decay` is refused to avoid
            mixing in decoupled decay by mistake.
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        nesterov=True,
        l2_weight_decay=5e-4,
        name="torch_sgd",
        **kwargs,
    ):
        if kwargs.get("weight_decay"):
            raise InvalidArgumentError(
                "TorchSGD applies coupled L2 decay through l2_weight_decay; Keras' "
                "decoupled weight_decay would decay twice. Received: "
                f"weight_decay={kwargs['weight_decay']!r}"
            )
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if momentum < 0:
            raise InvalidArgumentError(f"momentum must be >= 0. Received: momentum={momentum!r}")
        if nesterov and momentum == 0:
            raise InvalidArgumentError("Nesterov momentum needs momentum > 0. Received: momentum=0")
        if l2_weight_decay < 0:
            raise InvalidArgumentError(
                f"l2_weight_decay must be >= 0. Received: l2_weight_decay={l2_weight_decay!r}"
            )
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.l2_weight_decay = float(l2_weight_decay)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = (
            self.add_optimizer_variables(variables, "momentum") if self.momentum else []
        )

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        direction = ops.cast(gradient, variable.dtype)
        if self.l2_weight_decay:
            direction = ops.add(direction, ops.multiply(self.l2_weight_decay, variable))
        if self.momentum:
            buffer = self.momentums[self._get_variable_index(variable)]
            self.assign(buffer, ops.add(ops.multiply(self.momentum, buffer), direction))
            if self.nesterov:
                direction = ops.add(direction, ops.multiply(self.momentum, buffer))
            else:
                direction = buffer
        self.assign_sub(variable, ops.multiply(learning_rate, direction))

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "l2_weight_decay": self.l2_weight_decay,
        }
