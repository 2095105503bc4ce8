"""Writing files so that a kill or a full disk never leaves half a file.

Every file keras-wrn writes for keeps (run folders, exports, model cards,
the cache, converted weights) goes through `atomic_path`: a temporary
`.tmp-PID-NAME` beside the target, flushed and fsynced, renamed over the old
version. Temporaries of processes that no longer run are recognised by that
name and removed by the next command that writes into the same folder
(`remove_stale`). A write that fails is a `FileWriteError` whose message
names the file and, for a full disk, what the caller's user should do next.

A base module (standard library only): every room uses it.
"""

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import tempfile

from keras_wrn.errors import FileWriteError

TMP_PREFIX = ".tmp-"
_TEMPORARY = re.compile(rf"^{re.escape(TMP_PREFIX)}(\d+)-")
FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


def temporary_name(target):
    """The temporary path `target` is written under: `.tmp-PID-NAME` beside it."""
    folder, name = os.path.split(os.path.abspath(target))
    return os.path.join(folder, f"{TMP_PREFIX}{os.getpid()}-{name}")


def temporary_folder(folder, name):
    """A new, empty `.tmp-PID-NAME-XXXX` folder inside `folder` (created)."""
    return tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-{name}-", dir=folder)


def is_temporary(name):
    return name.startswith(TMP_PREFIX)


def remove(name):
    """Removes a file or a folder tree; gone already is fine."""
    with contextlib.suppress(OSError):
        if os.path.isdir(name) and not os.path.islink(name):
            shutil.rmtree(name)
        else:
            os.remove(name)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def remove_stale(folder):
    """Removes the `.tmp-PID-*` files and folders in `folder` of processes
    that no longer run, leaving a live one's (folders without a lock, such as
    an export's or the cache's). Returns the names removed."""
    removed = []
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
        match = _TEMPORARY.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def as_os_error(error):
    """`error` as an `OSError`, or None when it is not a file-system error.
    TensorFlow's writers (SavedModels, checkpoints, TensorBoard through
    `tf.io.gfile`) raise a `tf.errors.OpError` instead: a full disk there is
    a ResourceExhaustedError. TensorFlow is looked up, never imported."""
    if isinstance(error, OSError):
        return error
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(error, tf.errors.OpError):
        full = isinstance(error, tf.errors.ResourceExhaustedError) or "No space left on device" in error.message
        reason = os.strerror(errno.ENOSPC) if full else error.message.rsplit(";", 1)[-1].strip()
        return OSError(errno.ENOSPC if full else None, reason)
    return None


def write_error(target, error, *, full_disk="", error_class=FileWriteError):
    """The one-line error for an `OSError` met while writing `target`;
    `full_disk` is the caller's advice when the disk (or quota) is full."""
    code = getattr(error, "errno", None)
    reason = os.strerror(code) if code else str(error)
    advice = f" {full_disk}" if full_disk and code in FULL_DISK else ""
    return error_class(f"Could not write {target}: {reason}. The previous version of the file, if any, is "
                       f"intact.{advice}")


@contextlib.contextmanager
def atomic_path(target, *, full_disk="", error_class=FileWriteError):
    """Yields a temporary path beside `target` to write to; on success the
    file is fsynced and renamed over `target` (then its folder is fsynced).
    On any error the temporary file is removed and `target` is unchanged; an
    `OSError` becomes `error_class` (a `FileWriteError`) naming the file,
    with `full_disk` appended when the disk was full."""
    tmp = temporary_name(target)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, target)
        fsync(os.path.dirname(os.path.abspath(target)))
    except BaseException as error:
        remove(tmp)
        if isinstance(error, OSError) and not isinstance(error, FileWriteError):
            raise write_error(target, error, full_disk=full_disk, error_class=error_class) from error
        raise


def write_text(target, text, **options):
    """Writes `text` to `target` atomically (`atomic_path`'s options)."""
    with atomic_path(target, **options) as tmp, open(tmp, "w") as handle:
        handle.write(text)


def write_json(target, payload, **options):
    write_text(target, json.dumps(payload, indent=2) + "\n", **options)


def fsync(name):
    """Flushes a file or folder to disk (folders where the file system allows)."""
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


def sha256_file(path):
    """The SHA-256 hex digest of a file, read in 1 MiB chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FileLock:
    """An exclusive `flock` on the file `path` (created), which the kernel
    releases when the process exits, however it exits: a lock a killed
    process held is free at once. The file may name its holder
    (`holder()`, `write_holder(text)`); the run folder and the data
    download take one each."""

    def __init__(self, path):
        self.path = path
        self.descriptor = None

    def acquire(self, blocking=False):
        """Takes the lock; without `blocking`, returns False at once when
        another process holds it."""
        import fcntl

        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError:
            os.close(descriptor)
            return False
        self.descriptor = descriptor
        return True

    def holder(self):
        """The text the file holds (the last holder's, when it did not clear it)."""
        try:
            with open(self.path, "rb") as handle:
                return handle.read(4096).decode("utf-8", "replace").strip()
        except OSError:
            return ""

    def write_holder(self, text):
        os.ftruncate(self.descriptor, 0)
        os.lseek(self.descriptor, 0, os.SEEK_SET)
        os.write(self.descriptor, text.encode())

    def release(self, clear=False):
        """Releases the lock; `clear` empties the holder's text first."""
        if self.descriptor is not None:
            if clear:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.descriptor, 0)
            os.close(self.descriptor)
            self.descriptor = None
