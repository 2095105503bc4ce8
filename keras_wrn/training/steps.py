"""The model, optimiser and compiled training step of a run: one place, used
by the trainer and by the benchmarks, so that what is timed is what trains."""

import contextlib


def build_training_objects(config, spec, strategy, steps_per_epoch, zca=None, epochs=None):
    """(model, preprocess, optimizer, schedule) for `config` on dataset `spec`, built in
    `strategy`'s scope (none: the default device, any backend): the registered model (logits), the
    dataset's augmentation (with `config.augment`) and normalisation as a Keras model, and TorchSGD on
    the recipe's schedule over `epochs` (default `config.epochs`), keeping Keras' moving average of the
    weights when `config.ema_decay` is set (loss-scaled under mixed_float16).

    Sets Keras' global dtype policy to `config.precision` first: the layers
    compute in it (mixed precision keeps float32 variables), so what the
    benchmarks time under a precision is what trains under it. On the
    TensorFlow backend the model's batch normalisation trains with
    TensorFlow's fused kernel (`fused_batch_norm`: the same math, one kernel)."""
    import contextlib

    import keras

    from keras_wrn import data
    from keras_wrn.data.autoaugment import policy_for
    from keras_wrn.models import registry
    from keras_wrn.training.optimizer import TorchSGD
    from keras_wrn.training.schedules import learning_rate_schedule

    keras.config.set_dtype_policy(config.precision)
    model_spec = registry.get_model_spec(config.model)
    size, channels = spec.image_size, spec.channels
    mean, std = spec.normalization()
    schedule = learning_rate_schedule(config, steps_per_epoch, epochs or config.epochs)
    ema = {"use_ema": True, "ema_momentum": config.ema_decay} if config.ema_decay else {}
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = registry.get_model(
            config.model, num_classes=spec.num_classes, input_shape=(size, size, channels),
            classifier_activation=None,
            **({"dropout_rate": config.dropout_rate} if model_spec.family == "cifar" else {}),
        )
        preprocess = data.preprocessor(mean, std, flip=spec.flip, crop_padding=spec.crop_padding,
                                       seed=config.seed, zca=zca, augment=config.augment,
                                       policy=policy_for(config.dataset))
        preprocess.build((None, size, size, channels))
        optimizer = TorchSGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                             l2_weight_decay=config.weight_decay, **ema)
        if config.precision == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    if keras.backend.backend() == "tensorflow":
        from keras_wrn.training.fused_batch_norm import fuse_batch_norm

        fuse_batch_norm(model)
    return model, preprocess, optimizer, schedule


def replica_function(function, xla):
    """`function` as a per-replica tf.function, XLA-compiled when `xla`.

    XLA compiles the work of one replica (as Keras' own trainer does), never
    the `strategy.run` around it: a compiled cross-replica function cannot
    reach the variables of the other replicas under MirroredStrategy."""
    import tensorflow as tf

    return tf.function(function, jit_compile=True) if xla else function


def make_train_step(strategy, model, preprocess, optimizer, *, global_batch_size, precision="float32",
                    xla=False, label_smoothing=0.0, sharpness=None):
    """A tf.function `(uint8 images, int32 labels) -> (summed loss, wrong
    predictions)` running one optimiser step on every replica: augmentation,
    forward, cross-entropy (with `label_smoothing`) averaged over the global
    batch, backward, update (the replica's step XLA-compiled when `xla`).
    With `sharpness` (`sharpness.Sharpness`), SAM's second pass gives the
    gradients that are applied."""
    import tensorflow as tf

    from keras_wrn.training.losses import cross_entropy
    from keras_wrn.training.sharpness import tf_perturbed_gradients

    replicas = strategy.num_replicas_in_sync

    def step_fn(images, labels):
        inputs = preprocess(images, training=True)

        def loss_of(logits):
            per_example = cross_entropy(labels, tf.cast(logits, tf.float32), label_smoothing)
            return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            loss = loss_of(logits)
            scaled = optimizer.scale_loss(loss) if precision == "mixed_float16" else loss
        gradients = tape.gradient(scaled, model.trainable_variables)
        if sharpness is not None:
            gradients = tf_perturbed_gradients(model, inputs, loss_of, gradients, sharpness, replicas)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        wrong = tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != labels, tf.float32))
        return loss, wrong

    replica_step = replica_function(step_fn, xla)

    def train_step(images, labels):
        loss, wrong = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", wrong, axis=None)

    return tf.function(train_step)


@contextlib.contextmanager
def ema_weights(model, optimizer):
    """`model` with the optimizer's exponential moving average of its
    trainable weights swapped in (Keras' `use_ema`, through its public
    `finalize_variable_values`), its own weights back afterwards. Batch-norm
    statistics stay the model's, as the semi-supervised codebases' EMA
    models copy them."""
    import keras

    variables = model.trainable_variables
    saved = [keras.ops.convert_to_numpy(v.value) for v in variables]
    optimizer.finalize_variable_values(variables)
    for variable in variables:  # a copy: JAX's fit frees the model's buffers, which must not be the average's
        variable.assign(keras.ops.convert_to_numpy(variable.value))
    try:
        yield model
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def random_state(*models):
    """The variables of `models` that are no weights: the seed generators'
    states of the augmentation layers (and of dropout). Neither `.weights.h5`
    files nor a `tf.train.Checkpoint` of a Keras model hold them, so the
    trainers checkpoint them beside it: a resumed run draws the augmentation
    an uninterrupted one draws."""
    state = []
    for model in models:
        weights = {id(weight) for weight in model.weights}
        state += [variable for variable in model.variables if id(variable) not in weights]
    return state
