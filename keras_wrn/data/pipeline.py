"""tf.data pipelines: deterministic per-epoch order, sharding, prefetch.

The order of epoch e depends only on (seed, e), so a resumed run skips the
batches it already trained on and sees exactly what an uninterrupted run
would have seen.
"""


import math

from keras_wrn.errors import InvalidArgumentError

SHUFFLE_BUFFER_LIMIT = 100_000
CACHE_LIMIT_BYTES = 1 << 30
IMAGENET_RESIZE = 256


def steps_per_epoch(split, global_batch_size):
    """Optimizer steps in one training epoch (the last partial batch is dropped)."""
    steps = split.num_examples // global_batch_size
    if steps < 1:
        raise InvalidArgumentError(
            f"The global batch size {global_batch_size} is larger than the "
            f"{split.num_examples} training examples of {split.spec.name}; use a batch "
            f"size of at most {split.num_examples}."
        )
    return steps


def _imagenet_train_crop(image, seed):
    import tensorflow as tf

    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.zeros([0, 0, 4], tf.float32), seed=seed,
        area_range=(0.08, 1.0), aspect_ratio_range=(3 / 4, 4 / 3),
        min_object_covered=0.0, use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, size)
    image = tf.image.resize(image, (224, 224), method="bilinear", antialias=True)
    image = tf.image.stateless_random_flip_left_right(image, seed=seed + 1)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def _imagenet_eval_crop(image):
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = IMAGENET_RESIZE / tf.reduce_min(shape)
    resized = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, resized, method="bilinear", antialias=True)
    top = (resized[0] - 224) // 2
    left = (resized[1] - 224) // 2
    image = image[top : top + 224, left : left + 224]
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def batches(
    split,
    global_batch_size,
    *,
    epoch=0,
    seed=0,
    skip_steps=0,
    max_steps=None,
    input_context=None,
    deterministic=True,
):
    """A tf.data.Dataset of `(uint8 images, int32 labels)` batches.

    Training splits are shuffled with a seed derived from `(seed, epoch)`,
    sharded across input pipelines (after the shuffle, so the shards
    partition the epoch), batched per replica with the remainder dropped,
    and start `skip_steps` optimizer steps into the epoch. Evaluation splits
    keep every example, in order, unshuffled.

    Under `strategy.distribute_datasets_from_function`, pass its
    `input_context`; the per-replica batch is then
    `global_batch_size / num_replicas_in_sync`.
    """
    import tensorflow as tf

    source = split.source
    pipelines = input_context.num_input_pipelines if input_context else 1
    if input_context:
        batch_size = input_context.get_per_replica_batch_size(global_batch_size)
        local_batches_per_step = input_context.num_replicas_in_sync // pipelines
    else:
        batch_size, local_batches_per_step = global_batch_size, 1
    image_bytes = split.spec.image_size**2 * split.spec.channels
    if split.spec.name != "imagenet" and split.num_examples * image_bytes < CACHE_LIMIT_BYTES:
        source = source.cache()

    if split.training:
        source = source.shuffle(
            min(split.num_examples, SHUFFLE_BUFFER_LIMIT),
            seed=seed * 100_003 + epoch,
            reshuffle_each_iteration=False,
        )
    if pipelines > 1:
        source = source.shard(pipelines, input_context.input_pipeline_id)
    if split.spec.name == "imagenet":
        if split.training:
            seeds = tf.data.Dataset.random(seed=seed * 100_003 + epoch).batch(2)
            source = tf.data.Dataset.zip((source, seeds)).map(
                lambda pair, s: (_imagenet_train_crop(pair[0], tf.cast(s, tf.int32)), pair[1]),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic,
            )
        else:
            source = source.map(
                lambda image, label: (_imagenet_eval_crop(image), label),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
            )
    source = source.batch(batch_size, drop_remainder=split.training)
    if split.training:
        steps = steps_per_epoch(split, global_batch_size) if max_steps is None else max_steps
        source = source.take(steps * local_batches_per_step)
        source = source.skip(skip_steps * local_batches_per_step)
    elif max_steps is not None:
        source = source.take(max_steps * local_batches_per_step)
    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return source.with_options(options).prefetch(tf.data.AUTOTUNE)


def evaluation_batches(split, global_batch_size, *, input_context=None, max_examples=None):
    """Padded, weighted batches of a whole evaluation split for a strategy.

    Yields `(uint8 images, int32 labels, float32 weights)`: every input
    pipeline reads the whole split (or its first `max_examples`), padded with
    zero-weight blank images to whole steps, so that every worker and replica
    runs the same number of steps on static shapes (TPU, collectives). Sums
    weighted by `weights` then count each real example once per pipeline.
    """
    import tensorflow as tf

    spec = split.spec
    pipelines = input_context.num_input_pipelines if input_context else 1
    replicas = input_context.num_replicas_in_sync if input_context else 1
    per_replica = global_batch_size // replicas
    per_pipeline = per_replica * (replicas // pipelines)
    count = split.num_examples if max_examples is None else min(max_examples, split.num_examples)
    padded = math.ceil(count / per_pipeline) * per_pipeline
    source = split.source.take(count)
    if spec.name == "imagenet":
        source = source.map(lambda image, label: (_imagenet_eval_crop(image), label),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    source = source.map(lambda image, label: (image, label, tf.constant(1.0)))
    blank = (tf.zeros((spec.image_size, spec.image_size, spec.channels), tf.uint8),
             tf.constant(0, tf.int32), tf.constant(0.0))
    source = source.concatenate(tf.data.Dataset.from_tensors(blank).repeat(padded - count))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return (source.batch(per_replica, drop_remainder=True).with_options(options)
            .prefetch(tf.data.AUTOTUNE))
