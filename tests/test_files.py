"""The base module's helpers: the one hash of a file and the one file lock
(run folders and the data download take it), tried across real processes."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

from keras_wrn import files


def test_one_hashing_helper(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 << 20))
    assert files.sha256_file(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from keras_wrn.files import FileLock
    lock = FileLock(sys.argv[1])
    assert lock.acquire()
    lock.write_holder("pid held by the test")
    print("held", flush=True)
    time.sleep(60)
    """
)


def test_the_file_lock_refuses_a_live_holder_and_frees_a_killed_ones(tmp_path):
    path = str(tmp_path / "folder" / ".lock")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = files.FileLock(path)
        assert not lock.acquire() and lock.holder() == "pid held by the test"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + 10
    while not lock.acquire() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lock.descriptor is not None and lock.holder() == "pid held by the test"  # the killed one's name
    lock.release(clear=True)
    assert lock.holder() == ""
