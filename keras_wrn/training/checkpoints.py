"""What a run resumes from: one small interface, one store per trainer.

    TFCheckpointStore    tf.train: ckpt-STEP.index/.data-*  (network, optimizer with its EMA, augmentation's
                         random state, the closed epoch's record); at epoch ends and every --checkpoint-steps
                         or --checkpoint-minutes in between, so a resumed run continues mid-epoch
    KerasCheckpointStore Keras: epoch-E.weights.h5 + epoch-E.json  (trainer model: network and optimizer with
                         its EMA; {"record", "random_state"}); at epoch ends

Both keep the newest `KEEP` checkpoints, restore the newest intact one (a
damaged one is named and skipped, a folder whose checkpoints are all damaged
is refused rather than started over) and hand the controller the record of
the epoch that checkpoint closed, so a run killed between a checkpoint and
its epoch's files gets them back. Only the chief's store writes in the run
folder; a multi-worker run's other workers write theirs aside and delete
them at the end.
"""

import dataclasses
import json
import os
import shutil

from keras_wrn import files
from keras_wrn.training import records, run_folder

KEEP = 2


@dataclasses.dataclass(frozen=True)
class Restored:
    """Where a run stands after `restore`: the optimizer steps of the
    checkpoint (0: none) and the record of the epoch it closed (None for a
    mid-epoch checkpoint or none)."""

    step: int = 0
    closed: records.EpochRecord | None = None


class CheckpointStore:
    """The interface the controller sees. `pattern` is the store's file name
    pattern in `run_folder.CHECKPOINT_PATTERNS` (by its trainer's name)."""

    pattern = None

    def restore(self):
        """The newest intact checkpoint loaded into the run's objects: a `Restored`."""
        raise NotImplementedError

    def save(self, step, record=None):
        """A checkpoint at optimizer step `step`; `record` (an `EpochRecord`)
        when it closes an epoch. Keeps the newest `KEEP`."""
        raise NotImplementedError

    def finish(self):
        """The end of a run that finished (a worker's own copies removed)."""


def no_intact_checkpoint(run_dir, damaged):
    """Refuses a folder whose `damaged` checkpoints are all unreadable (nothing when there are none)."""
    if damaged:
        raise run_folder.RunFolderError(
            f"No intact checkpoint is left in {run_folder.path(run_dir, run_folder.CHECKPOINTS)} ({damaged} "
            f"damaged). Start over in a new folder (--run-dir); nothing in {run_dir} was deleted.")


def _damaged(path, problem, warn):
    warn(f"WARNING: checkpoint {path} is damaged ({problem}); resuming from an older one.")


def _reason(error):
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]


class TFCheckpointStore(CheckpointStore):
    """`tf.train.CheckpointManager` over `objects` (name -> trackable) and
    the closed epoch's record, in the run's `checkpoints/` (the chief) or a
    worker's own folder (`task_id`: every worker must take part in saving;
    every worker resumes from the chief's copy, the run folder being shared)."""

    pattern = run_folder.TF_CHECKPOINT

    def __init__(self, run_dir, objects, *, task_id=None, warn=print):
        import tensorflow as tf

        self.run_dir, self.warn = run_dir, warn
        self._record = tf.Variable("", trainable=False, dtype=tf.string)
        self.checkpoint = tf.train.Checkpoint(**objects, epoch_record=self._record)
        self.directory = run_folder.path(run_dir, run_folder.CHECKPOINTS) if task_id is None else \
            run_folder.worker_checkpoints(run_dir, task_id)
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=KEEP)

    def restore(self):
        numbers = run_folder.checkpoint_numbers(self.run_dir, self.pattern)
        for number in numbers:
            prefix = run_folder.checkpoint_prefix(self.run_dir, number)
            problem = self._problem(prefix)
            if problem is None:
                self.checkpoint.restore(prefix).expect_partial()
                closed = json.loads(self._record.numpy().decode() or "null")
                return Restored(number, records.EpochRecord(**closed) if closed else None)
            _damaged(prefix, problem, self.warn)
        no_intact_checkpoint(self.run_dir, len(numbers))
        return Restored()

    @staticmethod
    def _problem(prefix):
        """Why the checkpoint at `prefix` cannot be restored (a missing, short
        or unreadable index or data file), or None when every tensor reads."""
        import tensorflow as tf

        try:
            reader = tf.train.load_checkpoint(prefix)
            for key in reader.get_variable_to_shape_map():
                reader.get_tensor(key)
        except Exception as error:  # TensorFlow raises several types for damaged files
            return _reason(error)
        return None

    def save(self, step, record=None):
        """`manager.save`, whose failure (a full disk) removes its half-written
        folder and says what is intact, instead of a TensorFlow traceback."""
        import tensorflow as tf

        self._record.assign(json.dumps(record.to_dict()) if record is not None else "")
        try:
            self.manager.save(checkpoint_number=step)
        except tf.errors.OpError as error:
            run_folder.remove_debris(self.run_dir)
            older = run_folder.checkpoint_numbers(self.run_dir, self.pattern)
            reason = error.message.rsplit(";", 1)[-1].strip() or type(error).__name__
            raise run_folder.RunFolderWriteError(
                f"Could not write checkpoint {step} in {self.directory}: {reason}. The previous checkpoint "
                f"({f'ckpt-{older[0]}' if older else 'none yet'}) and the run's other files are intact. "
                f"{run_folder.RESUME_ADVICE}") from None

    def finish(self):
        if self.directory != run_folder.path(self.run_dir, run_folder.CHECKPOINTS):
            shutil.rmtree(self.directory, ignore_errors=True)


class KerasCheckpointStore(CheckpointStore):
    """A Keras model's `.weights.h5` (the trainer model: network and
    optimizer) per epoch, with the epoch's record and `random_state` (the
    variables no weights file holds) in a JSON file beside it, written
    first. `steps_per_epoch` checks a checkpoint against the run's plan.
    `chief=False`: restores, writes nothing."""

    pattern = run_folder.FIT_CHECKPOINT

    def __init__(self, run_dir, model, random_state, *, steps_per_epoch, chief=True, warn=print):
        self.run_dir, self.model, self.random_state = run_dir, model, random_state
        self.steps_per_epoch, self.chief, self.warn = steps_per_epoch, chief, warn

    def restore(self):
        import keras
        import numpy as np

        numbers = run_folder.checkpoint_numbers(self.run_dir, self.pattern)
        for epoch in numbers:
            path = run_folder.fit_checkpoint(self.run_dir, epoch)
            try:
                self.model.load_weights(path)
                with open(run_folder.fit_checkpoint_record(self.run_dir, epoch)) as handle:
                    saved = json.load(handle)
                # {"record", "random_state"}; a bare record before the state was kept
                record = records.EpochRecord(**saved.get("record", saved))
                for variable, value in zip(self.random_state, saved.get("random_state", [])):
                    variable.assign(np.asarray(value, dtype=variable.dtype))
            except Exception as error:  # h5py, Keras and json raise many types for a damaged file
                _damaged(path, _reason(error)[:200], self.warn)
                continue
            steps = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
            if steps != epoch * self.steps_per_epoch:
                raise run_folder.RunFolderError(
                    f"{path} holds {steps} optimizer steps, not the {epoch * self.steps_per_epoch} of epoch {epoch} "
                    f"at {self.steps_per_epoch} steps per epoch: the folder was written by another setup. Pass "
                    f"another --run-dir.")
            return Restored(steps, record)
        no_intact_checkpoint(self.run_dir, len(numbers))
        return Restored()

    def save(self, step, record=None):
        import keras

        if record is None:
            raise ValueError("A Keras checkpoint closes an epoch: pass its record.")
        if not self.chief:
            return
        os.makedirs(run_folder.path(self.run_dir, run_folder.CHECKPOINTS), exist_ok=True)
        state = [keras.ops.convert_to_numpy(v.value).tolist() for v in self.random_state]
        run_folder.write_json(run_folder.fit_checkpoint_record(self.run_dir, record.epoch),
                              {"record": record.to_dict(), "random_state": state})
        run_folder.save_weights(self.model, run_folder.fit_checkpoint(self.run_dir, record.epoch))
        for old in run_folder.checkpoint_numbers(self.run_dir, self.pattern)[KEEP:]:
            for name in (run_folder.fit_checkpoint(self.run_dir, old),
                         run_folder.fit_checkpoint_record(self.run_dir, old)):
                files.remove(name)
