"""The Keras `fit` trainer: `keras-wrn train` under JAX or PyTorch, and the
pieces it trains with, which also work on their own from in-memory arrays
(a notebook, the GPU machines without TensorFlow).

The recipe is the tf.distribute trainer's: the model, augmentation, TorchSGD
and schedule come from `steps.build_training_objects`, wrapped for
`Model.fit` by `build_fit_model`. Under JAX, `fit` runs one jit-compiled
(XLA) step per batch; only the uint8 batch travels to the device. The
batches come from `data.feeds`: streamed by tf.data for the datasets of
tensorflow-datasets (CIFAR, SVHN, ImageNet: the tf.distribute trainer's
pipeline and order), from host memory for the digits and image files.

Resume is per epoch: at each epoch end the trainer model (network and
optimizer) is saved as `checkpoints/epoch-N.weights.h5` with the epoch's
record and the augmentation's random state beside it (`epoch-N.json`),
newest two kept, then the epoch's files. A killed run, started again,
resumes from the newest intact checkpoint (writing that epoch's files if the kill came before them) and
redoes the epoch it was in, with that epoch's data order, ending with the
optimizer steps and learning rate of an uninterrupted run.
"""

import contextlib
import dataclasses
import json
import os
import re
import time

import keras
import numpy as np

from keras_wrn import files
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training import distribution, records, run_folder
from keras_wrn.training.schedules import rate_at
from keras_wrn.training.session import RunPlan, Trainer
from keras_wrn.training.steps import ema_context, random_state

KEEP_CHECKPOINTS = 2
# What JAX raises in a collective or the coordination service when a host of
# the run is gone (Gloo's transport on CPUs; the service's heartbeat).
LOST_HOST = re.compile(r"Gloo \w+ failed|Connection (?:closed|reset) by peer|heartbeat timeout|"
                       r"CoordinationService|Socket closed", re.IGNORECASE)


def build_fit_model(config, spec, steps_per_epoch, jit_compile=True, zca=None, epochs=None):
    """`(trainer, net)`: the registered network `net` (logits) behind the
    dataset's augmentation and normalisation, as one compiled Keras model
    taking uint8 (or float 0-255) images `(N, H, W, C)` and int labels, with
    TorchSGD on the recipe's schedule over `epochs` (default
    `config.epochs`), cross-entropy on logits (label-smoothed with
    `config.label_smoothing`) and, for `config.optimizer` sam/asam, SAM's
    two-pass step (`sharpness.SharpnessAwareSequential`). Its metrics,
    `accuracy`, `xent` (the plain cross-entropy) and, for 100 classes and
    more, `top5`, honour sample weights, so padded evaluation batches
    (`data.feeds.EvaluationBatches`) are exact.

    Sets the global dtype policy to `config.precision` (in
    `build_training_objects`; mixed precision keeps float32 weights and
    float32 loss).
    """
    from keras_wrn.training.losses import SmoothedCrossentropy
    from keras_wrn.training.sharpness import Sharpness, SharpnessAwareSequential
    from keras_wrn.training.steps import build_training_objects

    keras.utils.set_random_seed(config.seed)
    net, preprocess, optimizer, _ = build_training_objects(config, spec, None, steps_per_epoch, zca=zca,
                                                           epochs=epochs)
    size, channels = spec.image_size, spec.channels
    layers = [keras.Input((size, size, channels)), preprocess, net]
    sharpness = Sharpness.from_config(config)
    trainer = keras.Sequential(layers, name=f"fit_{net.name}") if sharpness is None else \
        SharpnessAwareSequential(layers, sharpness=sharpness, name=f"fit_{net.name}")
    loss = SmoothedCrossentropy(config.label_smoothing) if config.label_smoothing else \
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
               keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="xent")]
    if spec.num_classes >= 100:  # the epoch record's top-5 error, as the tf.distribute trainer's
        metrics.append(keras.metrics.SparseTopKCategoricalAccuracy(k=5, name="top5"))
    trainer.compile(optimizer=optimizer, loss=loss, weighted_metrics=metrics,
                    jit_compile=jit_compile)
    return trainer, net


class EpochRecords(keras.callbacks.Callback):
    """Turns each epoch of `fit` into a `records.EpochRecord` (the training
    part timed alone, the test figures where the epoch was tested) and hands
    it to `on_record(record)`. Also sets the data order of each epoch of
    `batches` (a `data.feeds` training feed, or None)."""

    def __init__(self, on_record, *, images_per_epoch, schedule, steps_per_epoch, batches=None):
        super().__init__()
        self.on_record, self.images_per_epoch = on_record, images_per_epoch
        self.schedule, self.steps_per_epoch, self.batches = schedule, steps_per_epoch, batches
        self._started = self._train_seconds = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.batches is not None:
            self.batches.set_epoch(epoch)
        self._started, self._train_seconds = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        # fit() runs the test pass inside the epoch: time the training part alone.
        if self._started is not None and self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._started

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._train_seconds or time.perf_counter() - self._started
        logs = logs or {}
        step = (epoch + 1) * self.steps_per_epoch
        tested = "val_accuracy" in logs
        self.on_record(records.EpochRecord(
            epoch=epoch + 1, step=step, learning_rate=rate_at(self.schedule, step), train_loss=float(logs["loss"]),
            train_error=1.0 - float(logs["accuracy"]), epoch_seconds=round(seconds, 3),
            images_per_second=round(self.images_per_epoch / seconds, 1),
            test_loss=float(logs.get("val_xent", logs.get("val_loss"))) if tested else None,
            test_error=1.0 - float(logs["val_accuracy"]) if tested else None,
            test_top5_error=1.0 - float(logs["val_top5"]) if tested and "val_top5" in logs else None))


@contextlib.contextmanager
def _without_distribution():
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


class FitTrainer(Trainer):
    """Phases: `prepare` (devices, the data: tf.data splits or in-memory
    arrays, the run plan), `settle` (XLA on unless --no-xla), `build` (the
    compiled trainer model under Keras' data-parallel distribution when there
    are several devices, restored from the newest intact
    `epoch-N.weights.h5`), `train_epochs` (one `fit` call whose epoch ends
    write the checkpoint, then the run folder's files)."""

    name = "keras-fit"

    def __init__(self, config, spec, **kwargs):
        super().__init__(config, spec, **kwargs)
        self.placement = None  # distribution.Placement (prepare)
        self.streamed = False  # tf.data splits (True) or arrays in memory (prepare)
        self.train_split = self.test_split = None  # streamed: datasets.Split
        self.x_train = self.y_train = self.x_test = self.y_test = None  # in memory: numpy arrays
        self.train_examples, self.class_names = 0, []
        self.model = None  # the compiled trainer model around `net` (build)
        self.start_epoch = 0  # the epochs its newest intact checkpoint holds (build)
        self.tests = None  # the test feed (train_epochs)
        self._distribution = None  # Keras' distribution before this run set its own (build)

    def prepare(self):
        from keras_wrn import data

        config, backend = self.config, keras.backend.backend()
        if backend == "jax":
            self.placement = distribution.place(config.strategy, config.cpu_devices, config.tpu, log=self.log)
        elif config.strategy not in ("auto", "one-device") or config.cpu_devices or config.tpu:
            raise InvalidArgumentError(
                f"Under {backend}, keras-wrn trains on one device; --strategy {config.strategy}"
                f"{', --cpu-devices' if config.cpu_devices else ''}{', --tpu' if config.tpu else ''} needs a route "
                f"that scales: KERAS_BACKEND=jax (Keras' data-parallel distribution over every device and host) or "
                f"KERAS_BACKEND=tensorflow (tf.distribute: mirrored, multi-worker, TPU).")
        else:
            self.placement = distribution.Placement(devices=("default",))
        self.chief = self.placement.chief
        if config.xla is False and self.placement.replicas > 1:
            raise InvalidArgumentError(
                f"Under JAX, a step over {self.placement.replicas} devices runs compiled by XLA (uncompiled, its "
                f"collectives deadlock): leave out --no-xla, or train on one device (--strategy one-device).")
        RunPlan.global_batch(config, self.placement.replicas, "devices")  # before the data are read
        self.streamed = data.streams(self.spec, config.data_dir)
        if self.streamed:
            self._prepare_stream()
        else:
            self.x_train, self.y_train, self.x_test, self.y_test, self.class_names = \
                data.in_memory_arrays(self.spec, config.data_dir)
            self.train_examples = len(self.y_train)
        self.plan = RunPlan.of(config, self.placement.replicas, self.train_examples, "devices")
        if self.plan.test_examples and not self.streamed:
            self.x_test, self.y_test = self.x_test[:self.plan.test_examples], self.y_test[:self.plan.test_examples]

    def _prepare_stream(self):
        """The tensorflow-datasets splits, downloaded and prepared first
        unless --no-download, read through tf.data kept off the accelerators."""
        from keras_wrn import data
        from keras_wrn.data.feeds import input_tensorflow

        config = self.config
        input_tensorflow()
        data.prepare(self.spec, config.data_dir, download=config.download, mirror=config.data_mirror, log=self.log)
        self.train_split = data.load_split(self.spec, "train", data_dir=config.data_dir, training=True)
        self.test_split = data.load_split(self.spec, "test", data_dir=config.data_dir)
        self.train_examples, self.class_names = self.train_split.num_examples, self.train_split.class_names

    def settle(self):
        config = dataclasses.replace(self.config, xla=self.config.xla is not False)  # jit-compiled unless --no-xla
        backend = keras.backend.backend()
        placed = [str(device) for device in self.placement.devices] if backend == "jax" else \
            distribution.devices(backend)
        return config, {"devices": placed, "replicas": self.placement.replicas,
                        "processes": self.placement.processes, "global_batch_size": self.batch_size,
                        "steps_per_epoch": self.steps_per_epoch, "class_names": self.class_names}

    def training_images(self):
        return self.train_split.images() if self.streamed else self.x_train

    def build(self, zca):
        from keras_wrn.training.schedules import learning_rate_schedule

        config = self.config
        self._distribution = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
        if self.placement.replicas > 1:
            keras.distribution.set_distribution(self.placement.distribution())
        self.model, self.net = build_fit_model(config, self.spec, self.steps_per_epoch, jit_compile=config.xla,
                                               zca=zca, epochs=self.epochs)
        self.schedule = learning_rate_schedule(config, self.steps_per_epoch, self.epochs)  # the optimizer's
        self.start_epoch = self._restore_newest_intact()
        self.start_step = self.start_epoch * self.steps_per_epoch
        spread = f", {self.placement.replicas} devices" if self.placement.replicas > 1 else ""
        hosts = f" on {self.placement.processes} hosts" if self.placement.processes > 1 else ""
        self.announce(f"Keras fit on {keras.backend.backend()}{spread}{hosts}",
                      resumed=f" (the end of epoch {self.start_epoch})")

    def _restore_newest_intact(self):
        """Loads the newest intact `epoch-N.weights.h5` into the trainer model
        and returns N (0 when there is none); damaged ones are named and
        skipped, and a folder whose checkpoints are all damaged is refused.
        When the run was killed after that checkpoint but before the epoch's
        files, its record (saved beside it) writes them now."""
        run_dir = self.config.run_dir
        numbers = run_folder.checkpoint_numbers(run_dir, run_folder.FIT_CHECKPOINT)
        for epoch in numbers:
            path = run_folder.fit_checkpoint(run_dir, epoch)
            try:
                self.model.load_weights(path)
                with open(run_folder.fit_checkpoint_record(run_dir, epoch)) as handle:
                    saved = json.load(handle)
                # {"record", "random_state"}; a bare record before the state was kept
                record = records.EpochRecord(**saved.get("record", saved))
                for variable, value in zip(random_state(self.model), saved.get("random_state", [])):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
            except Exception as error:  # h5py, Keras and json raise many types for a damaged file
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                self.warn(f"WARNING: checkpoint {path} is damaged ({type(error).__name__}: {reason[:200]}); "
                          f"resuming from an older one.")
                continue
            steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            if steps != epoch * self.steps_per_epoch:
                raise run_folder.RunFolderError(
                    f"{path} holds {steps} optimizer steps, not the {epoch * self.steps_per_epoch} of epoch {epoch} "
                    f"at {self.steps_per_epoch} steps per epoch: the folder was written by another setup. Pass "
                    f"another --run-dir.")
            if self.chief and not self.session.logged(epoch):
                self.session.end_epoch(record, self.net, ema=self._ema_context())
            return epoch
        run_folder.no_intact_checkpoint(run_dir, len(numbers))
        return 0

    def saving(self):
        """Keras creates a throwaway optimizer variable while it saves; under a
        multi-host distribution creating a variable is a step every host must
        take, so the chief, which saves alone, saves with none set."""
        if keras.backend.backend() != "jax" or self.placement.processes == 1:
            return contextlib.nullcontext()
        return _without_distribution()

    def _ema_context(self):
        return ema_context(self.config, self.model, self.model.optimizer)

    def _test_ema(self, record):
        """The EMA weights' test figures into `record` (runs with --ema)."""
        from keras_wrn.training.steps import ema_fields

        if not self.config.ema_decay or record.test_error is None:
            return
        with self._ema_context()():
            tested = self.model.evaluate(self.tests, verbose=0, return_dict=True)
        top5 = 1.0 - tested["top5"] if "top5" in tested else None
        for key, value in ema_fields((tested["xent"], 1.0 - tested["accuracy"], top5),
                                     self.spec.num_classes).items():
            setattr(record, key, float(value))

    def _end_epoch(self, record):
        """The epoch's checkpoint with its record first, then the epoch's
        files (`session.end_epoch`), as the tf.distribute trainer: a run
        killed in between writes them from the checkpoint when it resumes."""
        self._test_ema(record)
        with self.saving():
            self._write_epoch(record)
        self.log(record.summary(self.epochs), flush=True)
        if self.stop_when():
            self.model.stop_training = True

    def _write_epoch(self, record):
        if self.session.chief:
            run_dir = self.config.run_dir
            os.makedirs(run_folder.path(run_dir, run_folder.CHECKPOINTS), exist_ok=True)
            state = [keras.ops.convert_to_numpy(v.value).tolist() for v in random_state(self.model)]
            run_folder.write_json(run_folder.fit_checkpoint_record(run_dir, record.epoch),
                                  {"record": record.to_dict(), "random_state": state})
            run_folder.save_weights(self.model, run_folder.fit_checkpoint(run_dir, record.epoch))
            for old in run_folder.checkpoint_numbers(run_dir, run_folder.FIT_CHECKPOINT)[KEEP_CHECKPOINTS:]:
                for name in (run_folder.fit_checkpoint(run_dir, old), run_folder.fit_checkpoint_record(run_dir, old)):
                    files.remove(name)
        self.session.end_epoch(record, self.net, ema=self._ema_context())

    def train_epochs(self):
        if self.start_epoch >= self.epochs:
            return
        batches, self.tests = self._feeds()
        callback = EpochRecords(self._end_epoch, images_per_epoch=self.steps_per_epoch * self.batch_size,
                                schedule=self.schedule, steps_per_epoch=self.steps_per_epoch, batches=batches)
        # shuffle=False: the batches come in the feed's own order, drawn from (seed, epoch); Keras would
        # otherwise shuffle them again with Python's global random state, which a resumed run does not share.
        self.model.fit(batches, initial_epoch=self.start_epoch, epochs=self.epochs, shuffle=False,
                       steps_per_epoch=self.steps_per_epoch, verbose=0, validation_data=self.tests,
                       callbacks=[callback])

    def _feeds(self):
        """The training batches and the padded test batches this process
        feeds (`data.feeds`): streamed by tf.data or from memory."""
        from keras_wrn.data import feeds

        placement, replicas = self.placement, self.placement.replicas
        evaluation_batch = -(-max(self.batch_size, 256) // replicas) * replicas
        test_share = placement.share(evaluation_batch)
        if self.streamed:
            return (feeds.StreamedBatches(self.train_split, self.batch_size, self.steps_per_epoch,
                                          seed=self.config.seed, process=(placement.process_id, placement.processes)),
                    feeds.StreamedEvaluation(self.test_split, evaluation_batch, share=test_share,
                                             max_examples=self.plan.test_examples))
        return (feeds.ShuffledBatches(self.x_train, self.y_train, self.batch_size, seed=self.config.seed,
                                      share=placement.share(self.batch_size)),
                feeds.EvaluationBatches(self.x_test, self.y_test, evaluation_batch, share=test_share))

    def lost_peer(self, error):
        placement = self.placement
        if placement.processes < 2 or not LOST_HOST.search(str(error)):
            return None
        if placement.processes == 2:
            return f"host {1 - placement.process_id} of 2"
        return f"a host of {placement.processes}"

    def close(self):
        if keras.backend.backend() == "jax":
            keras.distribution.set_distribution(getattr(self, "_distribution", None))

    def steps_done(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
