"""A training run's folder as the controller (`controller`) uses it, and
the run's shape, the same for every trainer:

    take the folder's lock                             RunSession.__enter__
    check the folder holds this run (or its extension) RunSession.open
    refuse a used folder under --no-resume             RunSession.open
    write config.json                                  RunSession.write_config
    the run's ZCA statistics                           RunSession.zca
    each epoch's files                                 RunSession.end_epoch
    the final model                                    RunSession.save_model
    always: the caller's dtype policy back, TensorBoard closed, the lock released

    RunPlan      the global batch, the steps of an epoch, the epochs, the test examples
    TrainResult  what `keras-wrn train` returns

Only the chief (worker 0) writes; the other workers of a multi-worker run
pass `chief=False` and read. The checkpoints are the stores' (`checkpoints`).
"""

import dataclasses
import datetime
import math
import os

from keras_wrn import provenance
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training import logs, records, run_folder
from keras_wrn.training.config import IDENTITY_FIELDS, TrainConfig


def environment(**extra):
    """Package versions, the Keras backend and the CPU, for config.json."""
    import keras

    return {**provenance.package_versions(), "backend": keras.backend.backend(),
            "cpu": provenance.cpu().to_dict(), **extra}


class RunSession:
    """One run folder for one training run, opened by one trainer
    (`trainer`: a name of `run_folder.CHECKPOINT_PATTERNS`).

    Use as a context manager around everything that reads or writes the
    folder; `open()` then says whether the run starts, resumes or is trained
    longer than before (`self.extended_from`: the epochs it had)."""

    def __init__(self, config, spec, *, trainer, chief=True, log=print, warn=print):
        self.config, self.spec, self.trainer = config, spec, trainer
        self.chief, self.log, self.warn = chief, log, warn
        self.run_dir = config.run_dir
        self.lock = self.scalars = None
        self.previous = None  # the folder's config.json, when it has one
        self.extended_from = None
        self.records = []
        self._dtype_policy = None

    def path(self, name):
        return run_folder.path(self.run_dir, name)

    def __enter__(self):
        import keras

        self._dtype_policy = keras.config.dtype_policy()
        keras.config.set_dtype_policy(self.config.precision)
        if self.chief:  # before anything in the folder is read or written: one process at a time
            self.lock = run_folder.take(self.run_dir, self.log)
        return self

    def __exit__(self, *exc):
        import keras

        keras.config.set_dtype_policy(self._dtype_policy)
        if self.scalars is not None:
            self.scalars.close()
        if self.lock is not None:
            self.lock.release()

    def open(self, checkpoint_pattern):
        """Checks the folder against this run before anything is written:
        refuses another run's folder, one whose checkpoints another trainer
        wrote (`checkpoint_pattern` is this trainer's file name pattern) and,
        under --no-resume, any used one; allows a finished run to be trained
        for more epochs; reads its metrics."""
        try:
            self.previous = run_folder.read_config(self.run_dir)
        except (OSError, ValueError) as error:
            self._damaged_config(error)
        if self.previous is not None:
            self._check_identity()
        if not self.config.resume and run_folder.holds_training(self.run_dir):
            raise run_folder.RunFolderError(
                f"{self.run_dir} already holds a run and resume is off (--no-resume); pass another --run-dir "
                f"(nothing was deleted).")
        foreign = [name for name, pattern in run_folder.CHECKPOINT_PATTERNS.items()
                   if pattern is not checkpoint_pattern and run_folder.checkpoint_numbers(self.run_dir, pattern)]
        if foreign:
            raise run_folder.RunFolderError(
                f"{self.run_dir} holds checkpoints of the {foreign[0]} trainer, which cannot resume under this "
                f"backend ({self.trainer} trainer). Resume it with the backend that started it (KERAS_BACKEND), or "
                f"pass another --run-dir.")
        self.records = records.read_metrics(self.path(run_folder.METRICS), warn=self.warn)
        if self.chief:
            self.scalars = logs.TensorBoardScalars(self.path(run_folder.TENSORBOARD))

    def _damaged_config(self, error):
        self.warn(f"WARNING: {self.path(run_folder.CONFIG)} is damaged ({type(error).__name__}: {error}); it is "
                  f"written anew, and the run resumes from its checkpoints if they fit this model.")

    def _check_identity(self):
        try:
            previous = TrainConfig.from_dict(self.previous["config"])
        except (KeyError, TypeError, ValueError) as error:
            self._damaged_config(error)
            self.previous = None
            return
        config = self.config
        different = [f"{field}={getattr(previous, field)!r} (now {getattr(config, field)!r})"
                     for field in IDENTITY_FIELDS if getattr(previous, field) != getattr(config, field)]
        if config.epochs < previous.epochs:
            different.append(f"epochs={previous.epochs} (now {config.epochs}; a run can be trained longer, "
                             f"not shorter)")
        if different:
            raise run_folder.RunFolderError(
                f"The run folder {config.run_dir} belongs to another run: {', '.join(different)}. Pass the same "
                f"options to resume it, or another --run-dir for a new run.")
        if config.epochs > previous.epochs and previous.schedule == "cosine":
            raise run_folder.RunFolderError(
                f"{config.run_dir} was planned for {previous.epochs} epochs with a cosine schedule, which reaches 0 "
                f"at its last epoch: training it for {config.epochs} would change the rate of every epoch already "
                f"trained. Start a new run with --epochs {config.epochs} and another --run-dir (the step schedule "
                f"can be extended).")
        if config.epochs > previous.epochs:
            self.extended_from = previous.epochs

    def write_config(self, config, extra):
        """Writes config.json (the chief): the resolved config, this trainer,
        the environment and `extra`; the extensions of the run are kept."""
        if not self.chief:
            return
        extensions = list((self.previous or {}).get("extensions", []))
        if self.extended_from is not None:
            extensions.append({"epochs_before": self.extended_from, "epochs": config.epochs,
                               "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
            self.log(f"Training {self.run_dir} for {config.epochs} epochs instead of {self.extended_from}: it "
                     f"continues from where it stopped, at the schedule's rate for that epoch.")
        os.makedirs(self.run_dir, exist_ok=True)
        run_folder.write_json(self.path(run_folder.CONFIG), {
            "config": config.to_dict(), "trainer": self.trainer, "environment": environment(), **extra,
            **({"extensions": extensions} if extensions else {})})

    def zca(self, training_images):
        """The run's GCN + ZCA whitening `(mean, matrix)`: read from
        `zca.npz`, or fitted on `training_images()` (the whole training split,
        uint8 `(N, H, W, C)`; called only then) and written there (the chief)."""
        import numpy as np

        from keras_wrn.data import fit_zca

        path = self.path(run_folder.ZCA)
        stored = run_folder.read_zca(self.run_dir)
        if stored is not None:
            return stored
        mean, matrix = fit_zca(training_images())
        if self.chief:
            with run_folder.atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.savez(handle, mean=mean, matrix=matrix)
        return mean, matrix

    @property
    def best_test_error(self):
        return records.best_test_error(self.records)

    def last_test_error(self):
        tested = [r["test_error"] for r in records.latest_per_epoch(self.records) if r.get("test_error") is not None]
        return tested[-1] if tested else math.nan

    def logged(self, epoch):
        """Whether `metrics.jsonl` already has a line for `epoch` (counted from 1)."""
        return any(r.get("epoch") == epoch for r in self.records)

    def end_epoch(self, record, model, ema=None):
        """An epoch's files, in this order (the chief): last weights, the EMA
        weights (`ema()`: a context with them swapped into `model`), best
        weights when `records.improves`, `metrics.jsonl` (the record, marked
        `redone` if the epoch had a line), curves, TensorBoard."""
        if self.logged(record.epoch):
            record.redone = True
        line = record.to_dict()
        if self.chief:
            run_folder.save_weights(model, self.path(run_folder.LAST_WEIGHTS))
            if ema is not None:
                with ema():
                    run_folder.save_weights(model, self.path(run_folder.EMA_WEIGHTS))
            if records.improves(record.test_error, self.records):
                run_folder.save_weights(model, self.path(run_folder.BEST_WEIGHTS))
            run_folder.write_text(self.path(run_folder.METRICS), records.metrics_text(self.records + [line]))
        self.records.append(line)
        if self.chief:
            logs.plot_curves(records.latest_per_epoch(self.records), self.path(run_folder.CURVES),
                             f"{self.config.model} on {self.spec.name}")
            self.scalars.write(line)

    def save_model(self, model):
        """The final model, `model.keras` (the chief)."""
        if self.chief:
            run_folder.save_model(model, self.path(run_folder.MODEL))


SMOKE_STEPS = 3
SMOKE_EPOCHS = 2
SMOKE_BATCH_PER_REPLICA = 2


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    epochs: int
    steps: int
    learning_rate: float  # of the last update applied
    test_error: float
    best_test_error: float
    resumed_from_step: int


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """The shape of a run, the same for every trainer: the global batch, the
    optimizer steps of an epoch, the epochs, and the test examples (None:
    all). A smoke run takes SMOKE_STEPS steps of SMOKE_BATCH_PER_REPLICA
    images per replica for SMOKE_EPOCHS epochs, tested on as many images."""

    batch_size: int
    steps_per_epoch: int
    epochs: int
    test_examples: int | None = None

    @staticmethod
    def global_batch(config, replicas, unit="replicas"):
        """The global batch of `config` over `replicas` (devices: `unit`),
        refused when they cannot share it evenly: checkable before the data
        are read."""
        batch_size = SMOKE_BATCH_PER_REPLICA * replicas if config.smoke else config.batch_size
        check_batch_split(batch_size, replicas, unit)
        return batch_size

    @classmethod
    def of(cls, config, replicas, train_examples, unit="replicas"):
        """The plan of `config` over `replicas` for a split of
        `train_examples`; refuses a batch the replicas cannot share or the
        split cannot fill, before anything is written."""
        batch_size = cls.global_batch(config, replicas, unit)
        if batch_size > train_examples:
            raise InvalidArgumentError(
                f"The global batch size {batch_size} is larger than the {train_examples} training examples of "
                f"{config.dataset}; use a batch size of at most {train_examples}.")
        if config.smoke:
            return cls(batch_size, SMOKE_STEPS, SMOKE_EPOCHS, SMOKE_STEPS * batch_size)
        return cls(batch_size, train_examples // batch_size, config.epochs)

    @property
    def steps(self):
        return self.steps_per_epoch * self.epochs


def check_batch_split(batch_size, replicas, unit="replicas"):
    """Refuses a global batch the `replicas` (devices) cannot share evenly."""
    if batch_size % replicas:
        raise InvalidArgumentError(
            f"The global batch size {batch_size} cannot be split evenly over {replicas} {unit}; use a multiple of "
            f"{replicas}. Received: batch_size={batch_size}")


def check_model_and_data(config, spec):
    """Refuses a model the dataset's images are too small for, and names a
    damaged file of an image folder, before anything is written."""
    from keras_wrn import data
    from keras_wrn.models import registry

    if registry.get_model_spec(config.model).family == "imagenet" and spec.image_size < 32:
        raise InvalidArgumentError(
            f"{config.model} needs images of at least 32x32; {spec.name} has {spec.image_size}x{spec.image_size}. "
            f"Use a CIFAR-style model such as wrn-16-4.")
    if spec.tfds_name is None and spec.name != "digits":
        data.check_image_folder(spec.name)
