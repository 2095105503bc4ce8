"""A run folder's layout, its files written atomically, the lock and the
names of the checkpoints a run resumes from (their stores: `checkpoints`).

    runs/digits-wrn-16-4/
      config.json        the resolved TrainConfig, the trainer, the environment (versions, CPU,
                         devices), the XLA choice, the batch and steps, class names, extensions
      metrics.jsonl      one JSON line per epoch (`records.EpochRecord`), never cut back
      checkpoints/       what a run resumes from, newest two kept:
                           ckpt-N.index, ckpt-N.data-*  the tf.distribute trainer (tf.train: model,
                                                        optimizer with its EMA, the random state of augmentation
                                                        and dropout, the epoch's record), step N
                           epoch-N.weights.h5, .json    the Keras fit trainer (model and optimizer with its EMA;
                                                        {"record", "random_state"}), epoch N
      .workers/worker-N/ checkpoints a multi-worker run's other workers write (and delete at the end)
      best.weights.h5    weights of the epoch with the lowest test error in metrics.jsonl
      last.weights.h5    weights at the last epoch end
      ema.weights.h5     the moving average of the weights at the last epoch end (--ema)
      zca.npz            GCN + ZCA statistics (--zca)
      model.keras        the final model (logits), written when the run ends
      curves.png         training loss and test error per epoch (the paper's Figure 2)
      tensorboard/       TensorBoard event files (step = epoch)
      .lock              held (flock) by the process training in the folder

Every file is written through `files.atomic_path`: a kill or a full disk
leaves the previous version, never half a file. `.tmp-*` debris of a killed
process is removed by the next run that takes the lock.
"""

import json
import os
import re
import sys

from keras_wrn import files
from keras_wrn.errors import FileWriteError, InvalidArgumentError, KerasWRNError

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
WORKERS = ".workers"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
EMA_WEIGHTS = "ema.weights.h5"  # the moving average of the weights after the last epoch (--ema)
ZCA = "zca.npz"
MODEL = "model.keras"
CURVES = "curves.png"
TENSORBOARD = "tensorboard"
LOCK = ".lock"
# `keras-wrn evaluate/export --weights`: which of the run's weights.
WEIGHTS = {"final": MODEL, "best": BEST_WEIGHTS, "last": LAST_WEIGHTS, "ema": EMA_WEIGHTS}
# Checkpoint file names, one pattern per trainer: the number is a step (tf.train) or an epoch (Keras fit).
TF_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.index$")
FIT_CHECKPOINT = re.compile(r"^epoch-(\d+)\.weights\.h5$")
CHECKPOINT_PATTERNS = {"tf.distribute": TF_CHECKPOINT, "keras-fit": FIT_CHECKPOINT}
RESUME_ADVICE = "Free some space, then run the same command again: it resumes."


class RunFolderError(InvalidArgumentError):
    """A run folder that cannot be used as asked (another run's, damaged)."""


class RunFolderLockedError(KerasWRNError):
    """Another process is training in the run folder."""


class RunFolderWriteError(FileWriteError):
    """A file of the run folder could not be written (full disk, permissions)."""


def path(run_dir, name):
    return os.path.join(run_dir, name)


def worker_checkpoints(run_dir, task_id):
    """Where a multi-worker run's worker `task_id` (not the chief) writes its checkpoints."""
    return os.path.join(run_dir, WORKERS, f"worker-{task_id}")


def atomic_path(target):
    """`files.atomic_path` for a file of a run folder: a full disk says the run resumes."""
    return files.atomic_path(target, full_disk=RESUME_ADVICE, error_class=RunFolderWriteError)


def write_error(target, error):
    return files.write_error(target, error, full_disk=RESUME_ADVICE, error_class=RunFolderWriteError)


def save_weights(model, target):
    """`model.save_weights(target)`, atomically."""
    with atomic_path(target) as tmp:
        model.save_weights(tmp)


def save_model(model, target):
    """`model.save(target)` (a `.keras` file), atomically."""
    with atomic_path(target) as tmp:
        model.save(tmp)


def write_text(target, text):
    with atomic_path(target) as tmp, open(tmp, "w") as handle:
        handle.write(text)


def write_json(target, payload):
    write_text(target, json.dumps(payload, indent=2) + "\n")


def read_config(run_dir):
    """The whole `config.json` of a run folder (None when there is none)."""
    config_path = path(run_dir, CONFIG)
    if not os.path.exists(config_path):
        return None
    with open(config_path) as handle:
        return json.load(handle)


def remove_debris(run_dir):
    """Removes what killed saves left: `.tmp-*` files and TensorFlow's
    `*_temp*` checkpoint folders. Call it only while holding the lock."""
    removed = []
    for folder in (run_dir, path(run_dir, CHECKPOINTS)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if files.is_temporary(name) or (folder != run_dir and "_temp" in name):
                files.remove(os.path.join(folder, name))
                removed.append(name)
    return removed


def read_zca(run_dir):
    """The run's GCN + ZCA whitening `(mean, matrix)` from `zca.npz`, or None
    when the folder has none; a damaged file is a `RunFolderError` naming it
    and the fix (the statistics are fitted again from the training images, the
    same ones: the run's checkpoints stay valid)."""
    import zipfile

    import numpy as np

    target = path(run_dir, ZCA)
    if not os.path.exists(target):
        return None
    try:
        with np.load(target) as stored:
            return stored["mean"], stored["matrix"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise RunFolderError(
            f"{target} is damaged ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            f"Delete it and run the same command again: the whitening is fitted again from the training images, "
            f"the same statistics, and the run's checkpoints stay valid.") from None


class RunLock:
    """An exclusive lock on a run folder (`files.FileLock` on `RUN/.lock`),
    released when the process exits, however it exits: a lock left by a
    killed process is taken over at once, a live one refuses with the
    holder's PID."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.lock = files.FileLock(path(run_dir, LOCK))
        self.previous_holder = None

    def acquire(self):
        holder = self.lock.holder()
        if not self.lock.acquire():
            raise RunFolderLockedError(
                f"{self.run_dir} is in use by another keras-wrn process ({self.lock.holder() or holder or 'unknown'}). "
                f"Wait for it to finish, stop it, or pass another --run-dir.")
        self.previous_holder = holder or None
        self.lock.write_holder(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
        return self

    def release(self):
        """Clears the holder's line (only a killed process leaves its name)
        and releases the lock; the file stays, harmless."""
        self.lock.release(clear=True)


def take(run_dir, log=print):
    """Takes the folder's lock for this process (`RunLock`), says when it
    was a killed process's, and removes what killed saves left. Returns the
    held lock."""
    lock = RunLock(run_dir).acquire()
    if lock.previous_holder and f"pid {os.getpid()}:" not in lock.previous_holder:
        log(f"Took over the run folder's lock from a process that no longer runs ({lock.previous_holder}).")
    removed = remove_debris(run_dir)
    if removed:
        log(f"Removed {len(removed)} unfinished file(s) a killed run left in {run_dir}: "
            f"{', '.join(sorted(removed)[:5])}")
    return lock


def checkpoint_numbers(run_dir, pattern=TF_CHECKPOINT):
    """Numbers of the checkpoints of one trainer (`pattern`) in the folder,
    newest first, read from the file names (TensorFlow's `checkpoint` state
    file may be the damaged one)."""
    folder = path(run_dir, CHECKPOINTS)
    if not os.path.isdir(folder):
        return []
    return sorted((int(m.group(1)) for m in map(pattern.match, os.listdir(folder)) if m), reverse=True)


def holds_training(run_dir):
    """Whether the folder holds checkpoints of any trainer."""
    return any(checkpoint_numbers(run_dir, pattern) for pattern in CHECKPOINT_PATTERNS.values())


def checkpoint_prefix(run_dir, number):
    return os.path.join(path(run_dir, CHECKPOINTS), f"ckpt-{number}")


def fit_checkpoint(run_dir, epoch):
    return os.path.join(path(run_dir, CHECKPOINTS), f"epoch-{epoch}.weights.h5")


def fit_checkpoint_record(run_dir, epoch):
    """The epoch record a Keras fit checkpoint carries (written before it)."""
    return os.path.join(path(run_dir, CHECKPOINTS), f"epoch-{epoch}.json")
