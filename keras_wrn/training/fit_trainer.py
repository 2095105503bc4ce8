"""The Keras `fit` trainer: `keras-wrn train` under JAX or PyTorch.

The recipe is the tf.distribute trainer's: the model, augmentation, TorchSGD
and schedule come from `steps.build_training_objects`, through
`in_memory.build_fit_model`. So is the run folder (`run_folder`: lock, atomic
files, config.json, metrics.jsonl, best and last weights, curves,
model.keras, TensorBoard scalars), which `evaluate`, `export` and `predict` read like any other.
Data come from memory (`data.in_memory_arrays`): the digits, image folders,
and CIFAR stored as image files (`--data-dir`).

Resume is per epoch: Keras' BackupAndRestore keeps the model and optimizer in
`RUN/fit-backup` at each epoch end. A killed run, started again, redoes the
epoch it was in, with that epoch's data order, and ends with the optimizer
steps and learning rate of an uninterrupted run.
"""

import dataclasses
import functools
import os
import sys

import keras

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training import logs, run_folder
from keras_wrn.training.in_memory import EpochLog, ShuffledBatches, build_fit_model


class _EpochOrder(keras.callbacks.Callback):
    """Gives the batches the data order of each epoch, also of the first
    epoch of a resumed run."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches
        self.start_step = 0

    def on_train_begin(self, logs=None):  # after BackupAndRestore restored the optimizer
        self.start_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)


class _RunFiles(keras.callbacks.Callback):
    """At each epoch end (after `EpochLog` wrote the epoch's record): last and
    best weights of the network, the curves and the TensorBoard scalars."""

    def __init__(self, net, run_dir, title, scalars):
        super().__init__()
        self.net, self.run_dir, self.title, self.scalars = net, run_dir, title, scalars
        tested = [r["test_error"] for r in logs.read_metrics(run_folder.path(run_dir, run_folder.METRICS))
                  if "test_error" in r]
        self.best = min(tested, default=float("inf"))

    def on_epoch_end(self, epoch, logs_=None):
        run_folder.save_weights(self.net, run_folder.path(self.run_dir, run_folder.LAST_WEIGHTS))
        test_error = 1.0 - float((logs_ or {}).get("val_accuracy", 0.0))
        if test_error < self.best:
            self.best = test_error
            run_folder.save_weights(self.net, run_folder.path(self.run_dir, run_folder.BEST_WEIGHTS))
        records = logs.read_metrics(run_folder.path(self.run_dir, run_folder.METRICS))
        logs.plot_curves(logs.latest_per_epoch(records), run_folder.path(self.run_dir, run_folder.CURVES), self.title)
        self.scalars.write(records[-1])


def devices(backend):
    """The accelerators (or CPU) the backend computes on, for config.json."""
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices()]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ["cpu"]


def train_with_fit(config, *, verbose=True):
    """Runs (or resumes) `config` with Keras `fit` on the current backend;
    returns a `trainer.TrainResult`."""

    from keras_wrn import data
    from keras_wrn.training.schedules import epoch_step_decay
    from keras_wrn.training.trainer import (
        SMOKE_BATCH_PER_REPLICA,
        SMOKE_EPOCHS,
        SMOKE_STEPS,
        TrainResult,
        check_model_and_data,
        environment,
        load_or_fit_zca,
    )

    config.validate()
    backend = keras.backend.backend()
    log = print if verbose else (lambda *a, **k: None)
    warn = functools.partial(print, file=sys.stderr)
    if config.strategy not in ("auto", "one-device") or config.cpu_devices or config.tpu:
        raise InvalidArgumentError(
            f"tf.distribute strategies (--strategy {config.strategy}, --cpu-devices, --tpu) need "
            f"KERAS_BACKEND=tensorflow; under {backend}, keras-wrn trains on one device with Keras fit.")
    spec = data.get_dataset_spec(config.dataset)
    check_model_and_data(config, spec)
    if spec.tfds_name is None and spec.name != "digits":
        data.check_image_folder(spec.name)
    x_train, y_train, x_test, y_test, class_names = data.in_memory_arrays(spec, config.data_dir)
    batch_size = SMOKE_BATCH_PER_REPLICA if config.smoke else config.batch_size
    steps_per_epoch = SMOKE_STEPS if config.smoke else len(y_train) // batch_size
    epochs = SMOKE_EPOCHS if config.smoke else config.epochs
    if config.smoke:
        x_test, y_test = x_test[:SMOKE_STEPS * batch_size], y_test[:SMOKE_STEPS * batch_size]
    run_dir = config.run_dir
    config = dataclasses.replace(config, xla=config.xla is not False)  # jit-compiled, unless --no-xla

    lock = run_folder.take(run_dir, log)
    scalars = None
    try:
        run_folder.check_same_run(config, warn)
        backup_dir = run_folder.path(run_dir, run_folder.FIT_BACKUP)
        if not config.resume and os.path.isdir(backup_dir) and os.listdir(backup_dir):
            raise run_folder.RunFolderError(
                f"{run_dir} already holds a run and resume is off (--no-resume); pass another --run-dir "
                f"(nothing was deleted).")
        zca = load_or_fit_zca(config, lambda: x_train) if config.zca else None
        config.save(run_folder.path(run_dir, run_folder.CONFIG), {
            "environment": environment(), "devices": devices(backend), "replicas": 1,
            "trainer": f"Keras fit on {backend}",
            "global_batch_size": batch_size, "steps_per_epoch": steps_per_epoch, "class_names": class_names})
        trainer, net = build_fit_model(config, spec, steps_per_epoch, jit_compile=config.xla, zca=zca)
        schedule = epoch_step_decay(config.learning_rate, config.lr_boundaries, config.lr_factor, steps_per_epoch)
        batches = ShuffledBatches(x_train, y_train, batch_size, seed=config.seed)
        order = _EpochOrder(batches)
        scalars = logs.TensorBoardScalars(run_folder.path(run_dir, run_folder.TENSORBOARD))
        log(f"Training {config.model} on {spec.name}: Keras fit on {backend}, batch {batch_size}, "
            f"{config.precision}, XLA {'on' if config.xla else 'off'}.")
        trainer.fit(
            batches, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
            validation_data=(x_test, y_test), validation_batch_size=max(batch_size, 256),
            callbacks=[
                keras.callbacks.BackupAndRestore(backup_dir, save_freq="epoch", delete_checkpoint=False),
                order,
                EpochLog(run_folder.path(run_dir, run_folder.METRICS), steps_per_epoch * batch_size, schedule,
                         steps_per_epoch, log=log),
                _RunFiles(net, run_dir, f"{config.model} on {spec.name}", scalars),
            ],
        )
        if order.start_step:
            log(f"Resumed {run_dir} from step {order.start_step}.")
        run_folder.save_model(net, run_folder.path(run_dir, run_folder.MODEL))
        records = logs.latest_per_epoch(logs.read_metrics(run_folder.path(run_dir, run_folder.METRICS)))
        steps = int(keras.ops.convert_to_numpy(trainer.optimizer.iterations))
        tested = [r["test_error"] for r in records if "test_error" in r]
        return TrainResult(
            run_dir=run_dir, epochs=epochs, steps=steps, learning_rate=float(schedule(steps - 1)),
            test_error=tested[-1] if tested else float("nan"), best_test_error=min(tested, default=float("nan")),
            resumed_from_step=order.start_step)
    finally:
        keras.config.set_dtype_policy("float32")
        if scalars is not None:
            scalars.close()
        lock.release()
