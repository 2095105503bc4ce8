"""What every GPU job shares: the packed folder, the carried wheels, the
hard time budget, the environment record and the files it may send back.

A lent GPU machine (the `device` tool) has JAX, PyTorch and Python 3.12 but
no Keras and no network; a session has 15 minutes of it in all, at most 10 a
command, and gets back at most 8 files of 16 MiB (64 MiB together) from
`$OUT`. So every job is prepared and tested here (`pack.py`), travels with
the repository and the `.gpu-kit/` folder (`carry`), installs the carried
wheels itself, checks its own budget, and writes its results before the
budget ends.
"""

import dataclasses
import datetime
import hashlib
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT = os.path.join(ROOT, ".gpu-kit")  # git-ignored; named in `carry`
WHEELS = "wheels"
DATA = "data"
LEFT_BEHIND = "out"  # files a job leaves on the device for a second call to bring back
SITE_ENV = "KERAS_WRN_KIT_SITE"  # where the wheels are installed (default /tmp/site)
MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Quotas:
    """What the lending service allows a call (the device tool's README):
    its configuration, not the benchmark's; change it here when it changes."""

    files_back: int = 8  # files that come back from $OUT
    file_bytes: int = 16 * MIB  # each
    total_bytes: int = 64 * MIB  # together
    command_characters: int = 2000
    carry_bytes: int = 64 * MIB  # the working tree and `carry` together


QUOTAS = Quotas()


def kit_path(*parts, kit=None):
    return os.path.join(kit or os.environ.get("KERAS_WRN_KIT") or KIT, *parts)


def bootstrap():
    """Makes the carried Keras importable, once: installs `.gpu-kit/wheels`
    into the site folder (`KERAS_WRN_KIT_SITE`, default /tmp/site) as the
    device tool's README says, then runs this script again with that folder
    and the repository first on PYTHONPATH. Where Keras imports already
    (here, in a development environment) it only puts the repository on the
    path."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    if os.environ.get("KERAS_WRN_KIT_BOOTSTRAPPED"):
        return
    site = os.environ.get(SITE_ENV) or "/tmp/site"
    wheels = installable_wheels(kit_path(WHEELS))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", site, *wheels], check=True)
    environment = {**os.environ, "KERAS_WRN_KIT_BOOTSTRAPPED": "1",
                   "PYTHONPATH": os.pathsep.join(p for p in (site if wheels else "", ROOT,
                                                             os.environ.get("PYTHONPATH", "")) if p)}
    os.execve(sys.executable, [sys.executable, *sys.argv], environment)


def installable_wheels(folder):
    """The wheels in `folder` this interpreter can install (all of them on
    the device's Python 3.12; the pure-Python ones elsewhere)."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    supported = set(sys_tags())
    names = sorted(name for name in os.listdir(folder) if name.endswith(".whl")) if os.path.isdir(folder) else []
    return [os.path.join(folder, name) for name in names if supported & set(parse_wheel_filename(name)[3])]


class Budget:
    """The job's hard time limit, counted from its start: every phase asks
    `fits(seconds)` first, and what does not fit is skipped and recorded."""

    def __init__(self, seconds, reserve=15.0):
        self.started, self.seconds, self.reserve = time.monotonic(), float(seconds), reserve
        self.skipped = []

    def spent(self):
        return time.monotonic() - self.started

    def left(self):
        """Seconds left before the results must be written."""
        return self.seconds - self.reserve - self.spent()

    def fits(self, seconds, what=None):
        if seconds <= self.left():
            return True
        if what:
            self.skipped.append(f"{what} (needed about {seconds:.0f} s, {max(0, self.left()):.0f} s left)")
        return False


def gpu_description():
    """`(name, driver)` of the first GPU from nvidia-smi, or the CPU when there is none."""
    try:
        line = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
        name, driver = (part.strip() for part in line.split(",", 1))
        return name, driver
    except (OSError, IndexError, ValueError, subprocess.SubprocessError):
        from keras_wrn.provenance import cpu

        return cpu().describe(), None


def environment():
    """What the job ran on and with: GPU, driver, versions, the command."""
    import keras

    from keras_wrn.provenance import package_versions

    gpu, driver = gpu_description()
    return {"device": gpu, "driver": driver, "host": platform.node(), "keras_from": os.path.dirname(keras.__file__),
            "versions": package_versions("jax", "jaxlib", "torch", "numpy"),
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]]),
            "date": datetime.date.today().isoformat()}


class Output:
    """The files a job sends back (`$OUT`), kept within what the device tool
    returns (`QUOTAS`): at most `files_back` files of `file_bytes`, `total_bytes`
    together. Also the job's short log, written as it goes."""

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.log_path = os.path.join(folder, "log.txt")
        self.started = time.monotonic()

    def files(self):
        return sorted(os.listdir(self.folder))

    def room(self, size):
        """Whether one more file of `size` bytes comes back."""
        sizes = [os.path.getsize(os.path.join(self.folder, name)) for name in self.files()]
        return len(sizes) < QUOTAS.files_back and size <= QUOTAS.file_bytes and \
            sum(sizes) + size <= QUOTAS.total_bytes

    def log(self, message):
        line = f"[{time.monotonic() - self.started:7.1f} s] {message}"
        print(line, flush=True)
        with open(self.log_path, "a") as handle:
            handle.write(line + "\n")

    def write_json(self, name, payload):
        from keras_wrn import files

        path = os.path.join(self.folder, name)
        files.write_json(path, payload)
        return path


def split(path, part_bytes, destination):
    """Cuts `path` into parts of at most `part_bytes` in `destination`;
    returns the manifest: the file's name, size and SHA-256, and each part's."""
    from keras_wrn.files import sha256_file

    os.makedirs(destination, exist_ok=True)
    name, parts = os.path.basename(path), []
    with open(path, "rb") as handle:
        for index, chunk in enumerate(iter(lambda: handle.read(part_bytes), b"")):
            part = f"{name}.part{index}"
            with open(os.path.join(destination, part), "wb") as out:
                out.write(chunk)
            parts.append({"name": part, "bytes": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()})
    return {"file": name, "bytes": os.path.getsize(path), "sha256": sha256_file(path), "parts": parts}


class JoinError(Exception):
    """Parts that are missing, damaged or do not make the file back."""


def join(manifest, folders, target):
    """Joins the parts `manifest` names, found in any of `folders`, into
    `target`, checking each part's and the whole file's SHA-256 (written
    under a temporary name, renamed when whole). Returns `target`."""
    from keras_wrn.files import sha256_file

    tmp = target + ".joining"
    with open(tmp, "wb") as out:
        for part in manifest["parts"]:
            found = [os.path.join(folder, part["name"]) for folder in folders
                     if os.path.exists(os.path.join(folder, part["name"]))]
            if not found:
                os.remove(tmp)
                raise JoinError(f"{part['name']} is missing: bring it back from the device (the second call) "
                                f"into one of {', '.join(folders)}.")
            with open(found[0], "rb") as handle:
                chunk = handle.read()
            if hashlib.sha256(chunk).hexdigest() != part["sha256"]:
                os.remove(tmp)
                raise JoinError(f"{found[0]} does not match its SHA-256 in the manifest: fetch it again.")
            out.write(chunk)
    if sha256_file(tmp) != manifest["sha256"]:
        os.remove(tmp)
        raise JoinError(f"The parts do not make {manifest['file']} back (SHA-256 differs).")
    os.replace(tmp, target)
    return target
