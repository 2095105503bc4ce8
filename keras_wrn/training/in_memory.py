"""Training from in-memory arrays with Keras `fit`, on any backend.

The same model, augmentation, optimiser and schedule as `keras-wrn train`
(`steps.build_training_objects`), wrapped for `Model.fit`: this is the route
for JAX and PyTorch, where there is no TensorFlow and no tf.distribute (the
lent GPU machines, a notebook). Under JAX, `fit` runs one jit-compiled
(XLA) step per batch; the data stays in host memory as uint8 and only the
batch travels to the device.
"""

import time

import keras
import numpy as np

from keras_wrn.errors import InvalidArgumentError


class ShuffledBatches(keras.utils.PyDataset):
    """Full batches of `(images, labels)` in a new order every epoch.

    The order of epoch e is a permutation drawn from `(seed, e)`, the last
    `len(labels) % batch_size` examples of each permutation are left out, so
    every step has the same shape (no recompilation for a partial batch) and
    every example is seen about equally often.
    """

    def __init__(self, images, labels, batch_size, seed=0, **kwargs):
        super().__init__(**kwargs)
        if len(images) != len(labels):
            raise InvalidArgumentError(f"{len(images)} images but {len(labels)} labels.")
        if len(labels) < batch_size:
            raise InvalidArgumentError(f"batch_size={batch_size} is larger than the {len(labels)} examples.")
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0
        self._order = self._permutation()

    def _permutation(self):
        return np.random.default_rng((self.seed, self.epoch)).permutation(len(self.labels))

    def __len__(self):
        return len(self.labels) // self.batch_size

    def __getitem__(self, index):
        take = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[take], self.labels[take]

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch):
        """Draws the order of `epoch` (a resumed run starts at its epoch)."""
        self.epoch = epoch
        self._order = self._permutation()


def build_fit_model(config, spec, steps_per_epoch, jit_compile=True, zca=None):
    """`(trainer, net)`: the registered network `net` (logits) behind the
    paper's augmentation and normalisation, as one compiled Keras model
    taking uint8 (or float 0-255) images `(N, H, W, C)` and int labels, with
    TorchSGD on the recipe's step schedule and cross-entropy on logits.

    Sets the global dtype policy to `config.precision` (in
    `build_training_objects`; mixed precision keeps float32 weights and
    float32 loss).
    """
    from keras_wrn.training.steps import build_training_objects

    keras.utils.set_random_seed(config.seed)
    net, preprocess, optimizer, _ = build_training_objects(config, spec, None, steps_per_epoch, zca=zca)
    size, channels = spec.image_size, spec.channels
    trainer = keras.Sequential([keras.Input((size, size, channels)), preprocess, net], name=f"fit_{net.name}")
    trainer.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return trainer, net


class EpochLog(keras.callbacks.Callback):
    """Writes one JSON line per epoch to `path` (the trainer's metrics.jsonl
    schema: epoch, learning_rate, train_loss, train_error, test_loss,
    test_error where measured, epoch_seconds, images_per_second), and saves
    the network's weights to `weights_path` every `save_every` epochs."""

    def __init__(self, path, images_per_epoch, schedule, steps_per_epoch, net=None, weights_path=None,
                 save_every=10, log=print):
        super().__init__()
        self.path, self.images_per_epoch = path, images_per_epoch
        self.schedule, self.steps_per_epoch = schedule, steps_per_epoch
        self.net, self.weights_path, self.save_every, self.log = net, weights_path, save_every, log
        self._started = self._train_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        self._started, self._train_seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        # fit() runs the test pass inside the epoch: time the training part alone.
        if self._started is not None and self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._started

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._train_seconds or time.perf_counter() - self._started
        logs = logs or {}
        record = {
            "epoch": epoch + 1,
            "step": (epoch + 1) * self.steps_per_epoch,
            "learning_rate": float(self.schedule((epoch + 1) * self.steps_per_epoch - 1)),
            "train_loss": float(logs["loss"]),
            "train_error": 1.0 - float(logs["accuracy"]),
            "epoch_seconds": round(seconds, 3),
            "images_per_second": round(self.images_per_epoch / seconds, 1),
        }
        if "val_accuracy" in logs:
            record.update(test_loss=float(logs["val_loss"]), test_error=1.0 - float(logs["val_accuracy"]))
        from keras_wrn.training import logs as run_logs

        existing = run_logs.read_metrics(self.path)  # never cut back; a redone epoch is marked
        if any(r.get("epoch") == record["epoch"] for r in existing):
            record["redone"] = True
        run_logs.write_metrics(self.path, existing + [record])
        tested = f", test error {100 * record['test_error']:.2f}%" if "test_error" in record else ""
        self.log(f"epoch {epoch + 1}: loss {record['train_loss']:.4f}{tested}, {seconds:.1f} s, "
                 f"{record['images_per_second']:.0f} img/s", flush=True)
        if self.weights_path and self.save_every and (epoch + 1) % self.save_every == 0:
            from keras_wrn.training import run_folder

            run_folder.save_weights(self.net, self.weights_path)
