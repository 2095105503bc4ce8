"""A run folder's one owner: its layout, atomic writes, the lock and the
checkpoints a run resumes from.

    runs/digits-wrn-16-4/
      config.json        the resolved TrainConfig, environment, CPU, XLA choice
      metrics.jsonl      one JSON line per epoch (never cut back by a resume)
      checkpoints/       ckpt-N.index / .data-*: model, optimizer, augmentation state
      best.weights.h5    weights of the best test error so far
      last.weights.h5    weights at the last epoch end
      zca.npz            GCN + ZCA statistics (--zca)
      model.keras        the final model
      curves.png         training loss and test error per epoch
      tensorboard/       TensorBoard event files
      fit-backup/        model and optimizer at the last epoch end (the Keras fit route)
      .lock              held (flock) by the process training in the folder

Every file is written through `atomic_path`: a temporary `.tmp-PID-NAME`
beside it, flushed and fsynced, renamed over the old one, so a kill or a
full disk leaves the previous version, never half a file. `.tmp-*` debris of
a killed process is removed by the next run that takes the lock.
"""

import contextlib
import errno
import json
import os
import re
import sys

from keras_wrn.errors import InvalidArgumentError, KerasWRNError
from keras_wrn.temporaries import TMP_PREFIX
from keras_wrn.temporaries import remove as _remove

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
BEST_WEIGHTS = "best.weights.h5"
LAST_WEIGHTS = "last.weights.h5"
ZCA = "zca.npz"
MODEL = "model.keras"
CURVES = "curves.png"
TENSORBOARD = "tensorboard"
FIT_BACKUP = "fit-backup"  # the Keras fit route's BackupAndRestore (JAX, PyTorch)
LOCK = ".lock"
# `keras-wrn evaluate/export --weights`: which of the run's weights.
WEIGHTS = {"final": MODEL, "best": BEST_WEIGHTS, "last": LAST_WEIGHTS}
_CHECKPOINT = re.compile(r"^ckpt-(\d+)\.index$")


class RunFolderError(InvalidArgumentError):
    """A run folder that cannot be used as asked (another run's, damaged)."""


class RunFolderLockedError(KerasWRNError):
    """Another process is training in the run folder."""


class RunFolderWriteError(KerasWRNError, OSError):
    """A file of the run folder could not be written (full disk, permissions)."""


def path(run_dir, name):
    return os.path.join(run_dir, name)


@contextlib.contextmanager
def atomic_path(target):
    """Yields a temporary path beside `target` to write to; on success the
    file is fsynced and renamed over `target` (then the folder is fsynced).
    On any error the temporary file is removed and `target` is unchanged; an
    `OSError` (a full disk) becomes a `RunFolderWriteError` naming it."""
    folder = os.path.dirname(os.path.abspath(target))
    tmp = os.path.join(folder, f"{TMP_PREFIX}{os.getpid()}-{os.path.basename(target)}")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(folder)
    except BaseException as error:
        _remove(tmp)
        if isinstance(error, OSError) and not isinstance(error, KerasWRNError):
            raise write_error(target, error) from error
        raise


def write_error(target, error):
    reason = os.strerror(error.errno) if error.errno else str(error)
    hint = " Free some space, then run the same command again: it resumes." \
        if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return RunFolderWriteError(
        f"Could not write {target}: {reason}. The previous version of the file, if any, is intact.{hint}")


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


def _fsync(name):
    flags = os.O_RDONLY | (os.O_DIRECTORY if os.path.isdir(name) and hasattr(os, "O_DIRECTORY") else 0)
    try:
        descriptor = os.open(name, flags)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF):  # folders on some file systems
            raise
    finally:
        os.close(descriptor)


def remove_debris(run_dir):
    """Removes what killed saves left: `.tmp-*` files and TensorFlow's
    `*_temp*` checkpoint folders. Call it only while holding the lock."""
    removed = []
    for folder in (run_dir, path(run_dir, CHECKPOINTS)):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            if name.startswith(TMP_PREFIX) or (folder != run_dir and "_temp" in name):
                _remove(os.path.join(folder, name))
                removed.append(name)
    return removed


class RunLock:
    """An exclusive lock on a run folder (`flock` on `RUN/.lock`), released
    when the process exits, however it exits: a lock left by a killed process
    is taken over at once, a live one refuses with the holder's PID."""

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.descriptor = None
        self.previous_holder = None

    def acquire(self):
        import fcntl

        os.makedirs(self.run_dir, exist_ok=True)
        lock_path = path(self.run_dir, LOCK)
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        holder = os.read(descriptor, 4096).decode("utf-8", "replace").strip()
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            raise RunFolderLockedError(
                f"{self.run_dir} is in use by another keras-wrn process ({holder or 'unknown'}). Wait for it "
                f"to finish, stop it, or pass another --run-dir.") from None
        self.previous_holder = holder or None
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, f"pid {os.getpid()}: {' '.join(sys.argv)}\n".encode())
        self.descriptor = descriptor
        return self

    def release(self):
        """Clears the holder's line (only a killed process leaves its name)
        and releases the lock; the file stays, harmless."""
        if self.descriptor is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.descriptor, 0)
            os.close(self.descriptor)
            self.descriptor = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def check_same_run(config, warn=print):
    """Refuses a run folder that holds another run (a different value of
    `config.IDENTITY_FIELDS`); a damaged config.json is named and rewritten
    (the checkpoints, not it, decide what resumes)."""
    from keras_wrn.training.config import IDENTITY_FIELDS, TrainConfig

    config_path = path(config.run_dir, CONFIG)
    if not os.path.exists(config_path):
        return
    try:
        previous = TrainConfig.load(config_path)
    except (ValueError, KeyError, TypeError) as error:
        warn(f"WARNING: {config_path} is damaged ({type(error).__name__}: {error}); it is written anew, and "
             f"the run resumes from its checkpoints if they fit this model.")
        return
    different = [f"{field}={getattr(previous, field)!r} (now {getattr(config, field)!r})"
                 for field in IDENTITY_FIELDS if getattr(previous, field) != getattr(config, field)]
    if different:
        raise RunFolderError(
            f"The run folder {config.run_dir} belongs to another run: {', '.join(different)}. "
            f"Pass the same options to resume it, or another --run-dir for a new run.")


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


def checkpoint_numbers(run_dir):
    """Step numbers of the checkpoints in the folder, newest first, read from
    the files themselves (TensorFlow's `checkpoint` state file may be the
    damaged one)."""
    folder = path(run_dir, CHECKPOINTS)
    if not os.path.isdir(folder):
        return []
    return sorted((int(m.group(1)) for m in map(_CHECKPOINT.match, os.listdir(folder)) if m), reverse=True)


def checkpoint_prefix(run_dir, number):
    return os.path.join(path(run_dir, CHECKPOINTS), f"ckpt-{number}")


def checkpoint_problem(prefix):
    """Why the checkpoint at `prefix` cannot be restored (a missing, short
    or unreadable index or data file), or None when every tensor reads."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as error:  # TensorFlow raises several types for damaged files
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
    return None


def restore_newest_intact(checkpoint, run_dir, *, warn=print):
    """Restores `checkpoint` (a `tf.train.Checkpoint`) from the newest intact
    checkpoint of the folder and returns its step number, or None when the
    folder has none. Damaged ones are named in a warning and skipped; if
    checkpoints exist but none is intact, refuses rather than start over."""
    numbers = checkpoint_numbers(run_dir)
    for number in numbers:
        prefix = checkpoint_prefix(run_dir, number)
        problem = checkpoint_problem(prefix)
        if problem is None:
            checkpoint.restore(prefix).expect_partial()
            return number
        warn(f"WARNING: checkpoint {prefix} is damaged ({problem}); resuming from an older one.")
    if numbers:
        raise RunFolderError(
            f"No intact checkpoint is left in {path(run_dir, CHECKPOINTS)} ({len(numbers)} damaged). Start "
            f"over in a new folder (--run-dir); nothing in {run_dir} was deleted.")
    return None
