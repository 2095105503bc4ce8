"""TensorFlow's fused batch normalisation for the training step.

Keras 3's `BatchNormalization` computes, on the TensorFlow backend, the batch
moments and the normalisation as separate element-wise kernels, and casts
bfloat16 activations to float32 and back around them. TensorFlow's own
`FusedBatchNormV3` (oneDNN's kernel on x86 CPUs) does the forward and the
backward pass each in one kernel, in the activations' dtype. On an AMD Zen 4
(2 cores), WRN-16-4 at batch 64, trainer step without XLA, a probe that
patched Keras' layer with this kernel measured, back to back: float32 80 -> 89
img/s, mixed_bfloat16 125 -> 149 img/s (README, Benchmarks).

`fuse_batch_norm(model)` switches the training-mode call of each
BatchNormalization layer of a model to that kernel, on that model object
only: the math is Keras' (batch statistics, the biased variance in the moving
average, the layer's epsilon and momentum), the variables are the layer's
own, and inference, `get_config` and saved files are unchanged, so a
`.keras` file or SavedModel of the run knows nothing of it. Layers the kernel
cannot serve (masked, synchronised, renormalised, without scale or centre,
channels_first, not 4-D) keep Keras' call.
The model code stays pure Keras; this lives with the TensorFlow trainer.
"""

import types


def _fusable(layer):
    import keras

    return (isinstance(layer, keras.layers.BatchNormalization) and layer.scale and layer.center
            and not layer.synchronized and not layer.renorm and layer.axis in (-1, 3))


def _fused_call(self, inputs, training=None, mask=None):
    if not (training and self.trainable) or mask is not None or len(inputs.shape) != 4:
        return type(self).call(self, inputs, training=training, mask=mask)
    import tensorflow as tf

    outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
        x=inputs, scale=tf.cast(self.gamma, tf.float32), offset=tf.cast(self.beta, tf.float32),
        mean=tf.constant([], tf.float32), variance=tf.constant([], tf.float32),
        epsilon=self.epsilon, data_format="NHWC", is_training=True)
    # The kernel returns the Bessel-corrected variance; Keras averages the
    # biased one.
    count = tf.cast(tf.size(inputs) // tf.shape(inputs)[3], tf.float32)
    variance = variance * (count - 1.0) / count
    self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
    return tf.cast(outputs, self.compute_dtype)


def fuse_batch_norm(model):
    """Switches the training call of `model`'s BatchNormalization layers to
    TensorFlow's fused kernel (this object only; see the module). Returns the
    number of layers switched."""
    switched = 0
    for layer in model.layers:
        if _fusable(layer):
            layer.call = types.MethodType(_fused_call, layer)
            switched += 1
        elif hasattr(layer, "layers"):  # a nested model
            switched += fuse_batch_norm(layer)
    return switched
