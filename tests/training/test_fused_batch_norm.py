"""TensorFlow's fused batch normalisation in the training step: Keras' math
(outputs, gradients, moving statistics) in one kernel, and nothing of it in
the model's saved form."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from keras_wrn.training.fused_batch_norm import fuse_batch_norm  # noqa: E402


def conv_bn(axis=-1):
    import keras

    keras.utils.set_random_seed(1)
    shape = (6, 5, 7) if axis == -1 else (7, 6, 5)
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, data_format=(
        "channels_last" if axis == -1 else "channels_first"))(inputs)
    x = keras.layers.BatchNormalization(axis=axis, epsilon=1e-5, momentum=0.9, gamma_initializer="random_uniform",
                                        beta_initializer="random_normal", name="bn")(x)
    return keras.Model(inputs, x)


def step(model, x, weights):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)  # a loss whose input gradient is not ~0
    gradients = tape.gradient(loss, [x] + model.trainable_variables)
    return ([np.asarray(y, "float32")] + [g.numpy() for g in gradients]
            + [v.numpy() for v in model.non_trainable_variables])


@pytest.mark.parametrize("policy, atol", [("float32", 2e-5), ("mixed_bfloat16", 2e-2)])
def test_training_matches_keras_batch_normalization(policy, atol):
    import keras

    keras.config.set_dtype_policy(policy)
    try:
        keras_bn, fused = conv_bn(), conv_bn()
        assert fuse_batch_norm(fused) == 1
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(1.0, 3.0, (4, 6, 5, 7)).astype("float32"))
        weights = tf.constant(rng.normal(size=(4, 6, 5, 8)).astype("float32"))
        for _ in range(2):  # the second step starts from the updated moving statistics
            expected, got = step(keras_bn, x, weights), step(fused, x, weights)
            for name, a, b in zip(["outputs", "input gradient", "kernel gradient", "gamma gradient",
                                   "beta gradient", "moving mean", "moving variance"], expected, got):
                np.testing.assert_allclose(b, a, atol=atol * max(1.0, np.abs(a).max()), err_msg=name)
        np.testing.assert_allclose(np.asarray(fused(x, training=False), "float32"),
                                   np.asarray(keras_bn(x, training=False), "float32"), atol=atol)
    finally:
        keras.config.set_dtype_policy("float32")


def test_the_saved_model_is_plain_keras(tmp_path):
    import keras

    model = conv_bn()
    fuse_batch_norm(model)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    bn = loaded.get_layer("bn")
    assert type(bn) is keras.layers.BatchNormalization and "call" not in vars(bn)
    x = np.random.default_rng(2).normal(size=(2, 6, 5, 7)).astype("float32")
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_layers_the_kernel_cannot_serve_keep_keras_call():
    model = conv_bn(axis=1)  # channels_first: the fused CPU kernel is NHWC only
    assert fuse_batch_norm(model) == 0
