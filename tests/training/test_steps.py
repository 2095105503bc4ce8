"""The run's model, optimiser and step (`training.steps`): one place for the
trainer, the fit route and the benchmarks."""

import pytest

pytest.importorskip("tensorflow")


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_the_precision_is_what_the_layers_compute_in(precision):
    """A benchmark under mixed_bfloat16 once timed float32 layers: the
    policy is set where the model is built, for every caller."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_wrn import data
    from keras_wrn.benchmark import keras_cases
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.steps import build_training_objects, make_train_step
    from keras_wrn.training.strategies import make_strategy

    config = TrainConfig.from_preset("digits", precision=precision)
    strategy = make_strategy("one-device")
    try:
        model, preprocess, optimizer, _ = build_training_objects(config, data.get_dataset_spec("digits"),
                                                                 strategy, steps_per_epoch=10)
        convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
        assert convolutions and {layer.compute_dtype for layer in convolutions} == {precision[len("mixed_"):]}
        assert {v.dtype for v in model.trainable_variables} == {"float32"}  # mixed: float32 variables
        step = make_train_step(strategy, model, preprocess, optimizer, global_batch_size=4, precision=precision)
        images = tf.constant(keras_cases.random_images(4, 8, 1))
        loss, _ = step(images, tf.constant(np.arange(4, dtype="int32")))
        assert np.isfinite(float(loss)) and int(optimizer.iterations) == 1
    finally:
        keras.config.set_dtype_policy("float32")
