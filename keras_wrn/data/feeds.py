"""What Keras `fit` trains and tests on, on every backend: batches of a
dataset as `keras.utils.PyDataset`s, from host memory or streamed by tf.data.

    ShuffledBatches / EvaluationBatches    numpy arrays in host memory (the digits, image files)
    StreamedBatches / StreamedEvaluation   a tf.data split (tensorflow-datasets: CIFAR, SVHN, ImageNet),
                                           through `pipeline.batches` / `pipeline.evaluation_batches`

`feeds` picks by where the data comes from, not by the backend. Both kinds
give the same shapes: full training batches of uint8 images `(B, H, W, C)`
and int32 labels `(B,)` in an order that depends only on `(seed, epoch)`
(`set_epoch`), so a resumed run sees what an uninterrupted one saw; and
padded test batches `(images, labels, weights)` whose zero-weight blanks
make the weighted metrics exact. Under a multi-host JAX run each process
feeds its part of every global batch: its rows of the in-memory batch, or,
streamed, a batch of its own shard of the epoch (no example read twice).
"""

import math

import keras
import numpy as np

from keras_wrn.errors import InvalidArgumentError


class ShuffledBatches(keras.utils.PyDataset):
    """Full batches of `(images, labels)` in a new order every epoch.

    The order of epoch e is a permutation drawn from `(seed, e)`, the last
    `len(labels) % batch_size` examples of each permutation are left out, so
    every step has the same shape (no recompilation for a partial batch) and
    every example is seen about equally often. `share` `(start, stop)` keeps
    those rows of each global batch: a process's part of a multi-host run
    (`training.distribution.Placement.share`).
    """

    def __init__(self, images, labels, batch_size, seed=0, share=None, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise InvalidArgumentError(f"{len(images)} images but {len(labels)} labels.")
        if len(labels) < batch_size:
            raise InvalidArgumentError(f"batch_size={batch_size} is larger than the {len(labels)} examples.")
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self.share = share or (0, batch_size)
        self._order = self._permutation()

    def _permutation(self):
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.labels))

    def __len__(self):
        return len(self.labels) // self.batch_size

    def __getitem__(self, index):
        start, stop = self.share
        take = self._order[index * self.batch_size + start:index * self.batch_size + stop]
        return self.images[take], self.labels[take]

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch):
        """Draws the order of `epoch` (a resumed run starts at its epoch)."""
        self.epoch = epoch
        self._order = self._permutation()


class EvaluationBatches(keras.utils.PyDataset):
    """The whole test split in batches of one size, `(images, labels,
    weights)`: the last batch is padded with blank images of weight 0, so
    that every batch splits evenly over the devices and the weighted metrics
    count each real image once. `share` as `ShuffledBatches`."""

    def __init__(self, images, labels, batch_size, share=None, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.share = share or (0, batch_size)

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        start, stop = self.share
        rows = np.arange(index * self.batch_size + start, index * self.batch_size + stop)
        real = rows < len(self.labels)
        take = np.where(real, rows, 0)
        images = np.where(real[:, None, None, None], self.images[take], 0).astype(self.images.dtype)
        return images, np.where(real, self.labels[take], 0), real.astype("float32")


class _Stream(keras.utils.PyDataset):
    """A PyDataset over a tf.data pipeline read in order: `__getitem__(i)`
    continues the open iterator when `i` is the next batch, and otherwise
    opens the pipeline again at batch `i` (`_open(i)`)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._iterator, self._next = None, None

    def _open(self, index):
        raise NotImplementedError

    def _batch(self, index):
        if self._iterator is None or index != self._next:
            self._iterator, self._next = iter(self._open(index).as_numpy_iterator()), index
        self._next += 1
        return next(self._iterator)


class StreamedBatches(_Stream):
    """The training batches of a tf.data `split` (`datasets.Split`), epoch e
    in the order `pipeline.batches(epoch=e)` gives the tf.distribute trainer.
    `steps` batches an epoch; `process` `(index, count)`: this process's
    shard of every epoch under a multi-host run, batches of
    `batch_size / count` (its part of the global batch)."""

    def __init__(self, split, batch_size, steps, seed=0, process=(0, 1), **kwargs):
        super().__init__(**kwargs)
        self.split, self.batch_size, self.steps, self.seed = split, batch_size, steps, seed
        self.process, self.epoch = process, 0

    def _open(self, index):
        from keras_wrn.data import pipeline

        context = None
        if self.process[1] > 1:
            import tensorflow as tf

            index_of, count = self.process
            context = tf.distribute.InputContext(num_input_pipelines=count, input_pipeline_id=index_of,
                                                 num_replicas_in_sync=count)
        return pipeline.batches(self.split, self.batch_size, epoch=self.epoch, seed=self.seed, skip_steps=index,
                                max_steps=self.steps, input_context=context)

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        return self._batch(index)

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch):
        """Reads `epoch` next (a resumed run starts at its epoch)."""
        if epoch != self.epoch:
            self.epoch, self._iterator = epoch, None


class StreamedEvaluation(_Stream):
    """A tf.data test `split` as `EvaluationBatches` gives an in-memory one:
    global batches of `batch_size` padded with zero-weight blanks
    (`pipeline.evaluation_batches`), of which this process keeps the rows
    `share` `(start, stop)`; the first `max_examples` only, when given."""

    def __init__(self, split, batch_size, share=None, max_examples=None, **kwargs):
        super().__init__(**kwargs)
        self.split, self.batch_size, self.max_examples = split, batch_size, max_examples
        self.share = share or (0, batch_size)
        count = split.num_examples if max_examples is None else min(max_examples, split.num_examples)
        self.batches = math.ceil(count / batch_size)

    def _open(self, index):
        from keras_wrn.data import pipeline

        return pipeline.evaluation_batches(self.split, self.batch_size, max_examples=self.max_examples).skip(index)

    def __len__(self):
        return self.batches

    def __getitem__(self, index):
        start, stop = self.share
        return tuple(part[start:stop] for part in self._batch(index))


def streams(spec, data_dir=None):
    """Whether `fit` streams `spec` through tf.data: the datasets read from
    tensorflow-datasets. The digits and image files are read into memory,
    where their batches are cheaper."""
    from keras_wrn.data.datasets import from_tfds

    return from_tfds(spec, data_dir)


def input_tensorflow():
    """TensorFlow for the input pipeline of another backend: kept off the
    accelerators, which the training backend owns."""
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        try:
            tf.config.set_visible_devices([], "GPU")
            tf.config.set_visible_devices([], "TPU")
        except (RuntimeError, ValueError):  # devices already initialised, or no TPU kind: nothing to hide
            pass
    return tf
