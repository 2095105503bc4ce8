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


@keras.saving.register_keras_serializable(package="keras_wrn")
class ChannelZeroPadding(layers.Layer):
    """Appends `channels` zero channels: the parameter-free shortcut of
    google-research/sam's WRN (average pooling, then zero padding of the
    channel axis), where a 1x1 projection would otherwise widen the input.

    Args:
        channels: how many zero channels to append (>= 0).
        axis: the channel axis, -1 (channels_last) or 1 (channels_first).

    Input shape: `(N, H, W, C)` (or `(N, C, H, W)`). Output shape:
    `(N, H, W, C + channels)`.
    """

    def __init__(self, channels, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 0:
            raise InvalidArgumentError(
                f"ChannelZeroPadding appends a number >= 0 of channels. Received: channels={channels!r}")
        if axis not in (-1, 1, 3):
            raise InvalidArgumentError(f"ChannelZeroPadding axis must be -1, 1 or 3. Received: axis={axis!r}")
        self.channels = channels
        self.axis = axis

    def call(self, inputs):
        if self.channels == 0:
            return inputs
        widths = [[0, 0] for _ in range(len(inputs.shape))]
        widths[self.axis][1] = self.channels
        return ops.pad(inputs, widths)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        if shape[self.axis] is not None:
            shape[self.axis] += self.channels
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "axis": self.axis}
