"""The model, optimiser and compiled training step of a run: one place, used
by the trainer and by the benchmarks, so that what is timed is what trains."""


def build_training_objects(config, spec, strategy, steps_per_epoch, zca=None):
    """(model, preprocess, optimizer, schedule) for `config` on dataset `spec`, built in
    `strategy`'s scope (none: the default device, any backend): the registered model (logits), the paper's
    augmentation and normalisation as a Keras model, and TorchSGD on the
    paper's step schedule (loss-scaled under mixed_float16).

    Sets Keras' global dtype policy to `config.precision` first: the layers
    compute in it (mixed precision keeps float32 variables), so what the
    benchmarks time under a precision is what trains under it. On the
    TensorFlow backend the model's batch normalisation trains with
    TensorFlow's fused kernel (`fused_batch_norm`: the same math, one kernel)."""
    import contextlib

    import keras

    from keras_wrn import data
    from keras_wrn.models import registry
    from keras_wrn.training.optimizer import TorchSGD
    from keras_wrn.training.schedules import epoch_step_decay

    keras.config.set_dtype_policy(config.precision)
    model_spec = registry.get_model_spec(config.model)
    size, channels = spec.image_size, spec.channels
    mean, std = spec.normalization()
    schedule = epoch_step_decay(config.learning_rate, config.lr_boundaries, config.lr_factor, steps_per_epoch)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = registry.get_model(
            config.model, num_classes=spec.num_classes, input_shape=(size, size, channels),
            classifier_activation=None,
            **({"dropout_rate": config.dropout_rate} if model_spec.family == "cifar" else {}),
        )
        preprocess = data.preprocessor(mean, std, flip=spec.flip, crop_padding=spec.crop_padding,
                                       seed=config.seed, zca=zca)
        preprocess.build((None, size, size, channels))
        optimizer = TorchSGD(schedule, momentum=config.momentum, nesterov=config.nesterov,
                             l2_weight_decay=config.weight_decay)
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
                    xla=False):
    """A tf.function `(uint8 images, int32 labels) -> (summed loss, wrong
    predictions)` running one optimiser step on every replica: augmentation,
    forward, cross-entropy averaged over the global batch, backward, update
    (the replica's step XLA-compiled when `xla`)."""
    import keras
    import tensorflow as tf

    def step_fn(images, labels):
        inputs = preprocess(images, training=True)
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            scaled = optimizer.scale_loss(loss) if precision == "mixed_float16" else loss
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        wrong = tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != labels, tf.float32))
        return loss, wrong

    replica_step = replica_function(step_fn, xla)

    def train_step(images, labels):
        loss, wrong = strategy.run(replica_step, args=(images, labels))
        return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", wrong, axis=None)

    return tf.function(train_step)
