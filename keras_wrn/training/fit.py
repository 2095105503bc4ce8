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

The controller (`controller.Controller`) runs the epochs: one `fit` call
per epoch, then `evaluate` on the test feed. Resume is per epoch: at each
epoch end the trainer model (network and optimizer) is saved by
`checkpoints.KerasCheckpointStore`. A killed run, started again, resumes from
the newest intact checkpoint and redoes the epoch it was in, with that
epoch's data order, ending with the optimizer steps and learning rate of an
uninterrupted run.
"""

import contextlib
import dataclasses
import re
import time

import keras

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training import distribution
from keras_wrn.training.controller import Trained, Trainer
from keras_wrn.training.session import RunPlan
from keras_wrn.training.steps import ema_weights, random_state

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
    two-pass step (`sharpness.SharpnessAwareSequential`). Its metrics are
    `metrics.error_rates`: `xent` (the plain cross-entropy), `error` and, for
    100 classes and more, `top5_error`, the test error's one computation;
    they honour sample weights, so padded evaluation batches
    (`data.feeds.EvaluationBatches`) are exact.

    Sets the global dtype policy to `config.precision` (in
    `build_training_objects`; mixed precision keeps float32 weights and
    float32 loss).
    """
    from keras_wrn.training.losses import SmoothedCrossentropy
    from keras_wrn.training.metrics import error_rates
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
    trainer.compile(optimizer=optimizer, loss=loss, weighted_metrics=error_rates(spec.num_classes),
                    jit_compile=jit_compile)
    return trainer, net


@contextlib.contextmanager
def _without_distribution():
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


class FitTrainer(Trainer):
    """Keras fit as a `controller.Trainer`: `prepare` (devices, the data:
    tf.data splits or in-memory arrays, the run plan), `settle` (XLA on
    unless --no-xla), `build` (the compiled trainer model under Keras'
    data-parallel distribution when there are several devices; a
    `KerasCheckpointStore`), `train_epoch` (`fit` for one epoch), `test`
    (`evaluate` over the padded test batches)."""

    name = "keras-fit"

    def __init__(self, config, spec, **kwargs):
        super().__init__(config, spec, **kwargs)
        self.placement = None  # distribution.Placement (prepare)
        self.streamed = False  # tf.data splits (True) or arrays in memory (prepare)
        self.train_split = self.test_split = None  # streamed: datasets.Split
        self.x_train = self.y_train = self.x_test = self.y_test = None  # in memory: numpy arrays
        self.train_examples, self.class_names = 0, []
        self.model = None  # the compiled trainer model around `net` (build)
        self.batches = self.tests = None  # the training and test feeds (build)
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
        from keras_wrn.training.checkpoints import KerasCheckpointStore
        from keras_wrn.training.schedules import learning_rate_schedule

        config = self.config
        self._distribution = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
        if self.placement.replicas > 1:
            keras.distribution.set_distribution(self.placement.distribution())
        self.model, self.net = build_fit_model(config, self.spec, self.steps_per_epoch, jit_compile=config.xla,
                                               zca=zca, epochs=self.epochs)
        self.schedule = learning_rate_schedule(config, self.steps_per_epoch, self.epochs)  # the optimizer's
        self.batches, self.tests = self._feeds()
        return KerasCheckpointStore(config.run_dir, self.model, random_state(self.model),
                                    steps_per_epoch=self.steps_per_epoch, chief=self.chief, warn=self.warn)

    def route(self):
        spread = f", {self.placement.replicas} devices" if self.placement.replicas > 1 else ""
        hosts = f" on {self.placement.processes} hosts" if self.placement.processes > 1 else ""
        return f"Keras fit on {keras.backend.backend()}{spread}{hosts}"

    def train_epoch(self, epoch, step):
        """One `fit` call for epoch `epoch` (the trainer model's step count is
        the run's: a resumed run starts at an epoch's end)."""
        # The feed's epoch is set when fit begins the epoch: fit's start ends an "epoch" of its own
        # (PyDataset.on_epoch_end), which would otherwise move the feed on to the next epoch's order.
        ordered = keras.callbacks.LambdaCallback(on_epoch_begin=lambda index, logs=None: self.batches.set_epoch(index))
        started = time.perf_counter()
        # shuffle=False: the batches come in the feed's own order, drawn from (seed, epoch); Keras would
        # otherwise shuffle them again with Python's global random state, which a resumed run does not share.
        history = self.model.fit(self.batches, initial_epoch=epoch, epochs=epoch + 1, shuffle=False,
                                 steps_per_epoch=self.steps_per_epoch, verbose=0, callbacks=[ordered])
        # fit returns with the weights back, so the steps JAX queued are done: the clock covers them.
        seconds = time.perf_counter() - started
        logs = {key: values[-1] for key, values in history.history.items()}
        return Trained(step=(epoch + 1) * self.steps_per_epoch, loss=float(logs["loss"]),
                       error=float(logs["error"]), seconds=seconds, images=self.steps_per_epoch * self.batch_size)

    def test(self):
        tested = self.model.evaluate(self.tests, verbose=0, return_dict=True)
        return float(tested["xent"]), float(tested["error"]), tested.get("top5_error")

    def ema_weights(self):
        return ema_weights(self.model, self.model.optimizer)

    def saving(self):
        """Keras creates a throwaway optimizer variable while it saves; under a
        multi-host distribution creating a variable is a step every host must
        take, so the chief, which saves alone, saves with none set."""
        if keras.backend.backend() != "jax" or self.placement.processes == 1:
            return contextlib.nullcontext()
        return _without_distribution()

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
