"""Custom layers of keras_wrn, written with `keras.ops` only (every backend)."""

import keras
from keras import layers, ops

from keras_wrn.errors import InvalidArgumentError


@keras.saving.register_keras_serializable(package="keras_wrn")
class StochasticDepth(layers.Layer):
    """Drops a residual branch per sample during training (stochastic depth).

    Huang et al., "Deep Networks with Stochastic Depth" (2016), as noted in the
    WRN paper's related work. Each sample's branch is kept with probability
    `1 - rate` and, when kept, scaled by `1 / (1 - rate)` so that inference uses
    the full network unchanged (the "inverted" form; the expected output is the
    same as the paper's test-time rescaling).

    Args:
        rate: probability of dropping the branch, in [0, 1).
        seed: optional integer seed for reproducible masks.

    Input shape: any tensor whose first axis is the batch, e.g. `(N, H, W, C)`.
    Output shape: the same.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise InvalidArgumentError(
                f"StochasticDepth rate must be in [0, 1). Received: rate={rate}"
            )
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = 1.0 - self.rate
        mask_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        noise = keras.random.uniform(
            mask_shape, seed=self.seed_generator, dtype=inputs.dtype
        )
        mask = ops.cast(noise < keep, inputs.dtype)
        return inputs * mask / ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
