"""Temporary files and folders written beside their final place and renamed
over it: one naming convention, `.tmp-PID-NAME`, so that what a killed
process left (a run folder's save, an export, an archive being unpacked into
the cache) is recognised by the next run of the same command and removed.
Standard library only: every room may use it."""

import contextlib
import os
import re
import shutil

TMP_PREFIX = ".tmp-"
_TEMPORARY = re.compile(rf"^{re.escape(TMP_PREFIX)}(\d+)-")


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
