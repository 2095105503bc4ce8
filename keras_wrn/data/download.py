"""Getting a tensorflow-datasets dataset onto this machine, with
tensorflow-datasets' own builders and download manager (sizes and SHA-256
checked against the checksums tfds registers for every file).

    keras-wrn prepare svhn                       # download and prepare, then train anywhere
    keras-wrn train --dataset svhn ...           # prepares first when the data is missing
    KERAS_WRN_DATA_MIRROR=http://mirror/wrn/ ... # an internal HTTP mirror of the original files

Before anything is written it says what will be downloaded and how much disk
the download and the prepared dataset need, refuses at once when the disk
cannot hold it, and checks within `REACH_SECONDS` that the hosts answer, so
that an offline machine gets one clear error (naming the host and the offline
ways) instead of tfds' minutes of retries. One process prepares a dataset at a
time (a lock in the data folder). A prepared dataset appears only when whole:
tfds writes it into an `incomplete.*` folder renamed at the end, and keeps
downloads in `*.tmp.*` folders until they are complete and checked; what a
killed process left is removed by the next one, and finished downloads are
reused.

A mirror holds the original files under their original names (`MIRROR/
cifar-10-binary.tar.gz`, `MIRROR/train_32x32.mat`, ...). They are downloaded
with tfds' download manager, checked against the registered checksums, and
given to the dataset's builder through tfds' manual-download folder
(`DATA_DIR/downloads/manual/`), where it checks them again.
"""

import contextlib
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from keras_wrn import files
from keras_wrn.data.datasets import DataNotFoundError, missing_tfds_message

MIRROR_ENV = "KERAS_WRN_DATA_MIRROR"
REACH_SECONDS = 8.0  # at most, for every host together: an offline machine hears within 10 s


class DownloadError(DataNotFoundError):
    """A dataset could not be downloaded or prepared here (no network, a host
    that does not answer, a full disk, a file that fails its checksum)."""


def data_root(data_dir=None):
    """The tensorflow-datasets folder: `data_dir`, else `TFDS_DATA_DIR`, else
    `~/tensorflow_datasets`."""
    return os.path.abspath(os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR")
                                              or os.path.join("~", "tensorflow_datasets")))


def _builder(spec, root):
    import tensorflow_datasets as tfds

    return tfds.builder(spec.tfds_name, data_dir=root)


def human(size):
    """`1.47 GiB`: bytes in binary units, as tfds and its catalog print them."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.2f} {unit}"
        size /= 1024


def plan(spec, root, builder=None):
    """`(files, download_bytes, needed_bytes)`: the files to download (each
    `(registered url, UrlInfo)`), their total size, and the disk the download,
    its extraction (archives) and the prepared dataset take together."""
    builder = builder or _builder(spec, root)
    infos = sorted((builder.url_infos or {}).items())
    download = sum(int(info.size) for _, info in infos)
    extracted = sum(int(info.size) for url, info in infos if url.endswith((".tar.gz", ".tgz", ".tar", ".zip")))
    return infos, download, download + extracted + spec.prepared_bytes


def _free_bytes(folder):
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return shutil.disk_usage(folder).free


def _check_disk(spec, root, download, needed):
    free = _free_bytes(root)
    if free < needed:
        raise DownloadError(
            f"Not enough disk space in {root} for {spec.name}: it needs about {human(needed)} ({human(download)} to "
            f"download, {human(spec.prepared_bytes)} prepared) and {human(free)} are free. Free some space, or pass "
            f"--data-dir on a larger disk.")


def _mirrored(url, info, mirror):
    return f"{mirror.rstrip('/')}/{info.filename}" if mirror else url


def _host(url):
    return urllib.parse.urlsplit(url).netloc


def offline_ways(spec, root):
    return (f"Without network here: run `keras-wrn prepare {spec.name} --data-dir DIR` on a machine with network and "
            f"copy DIR/{spec.tfds_name}/ into {root}/ (or pass --data-dir DIR), set {MIRROR_ENV} to an HTTP "
            f"mirror of the original files, or train on image folders (--dataset PATH).")


def check_reachable(spec, root, urls, seconds=REACH_SECONDS):
    """Asks each host (its first URL, by HEAD) whether it answers, all within
    `seconds`; any HTTP answer counts. Raises `DownloadError` naming the first
    host that does not, with the offline ways."""
    hosts = {}
    for url in urls:
        hosts.setdefault(_host(url), url)
    deadline = time.monotonic() + seconds
    for host, url in hosts.items():
        timeout = max(0.1, (deadline - time.monotonic()) / max(1, len(hosts)))
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                pass
        except urllib.error.HTTPError:
            continue  # the host answered
        except (urllib.error.URLError, OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            reason = "no answer within the time allowed" if isinstance(reason, TimeoutError) or "timed out" in \
                str(reason) else str(reason)
            raise DownloadError(
                f"Cannot download {spec.name}: {host} does not answer ({reason}; {url}). "
                f"{offline_ways(spec, root)}") from None


@contextlib.contextmanager
def _preparing(spec, root, log):
    """One process at a time prepares `spec` in `root` (flock); the debris of
    a killed one (tfds' `incomplete.*` and `*.tmp.*` folders, our `.tmp-*`
    files) is removed once the lock is held."""
    lock = files.FileLock(os.path.join(root, f".keras-wrn-prepare-{spec.tfds_name}.lock"))
    if not lock.acquire():
        log(f"Waiting for another keras-wrn process that prepares {spec.name} in {root} ...")
        lock.acquire(blocking=True)
    try:
        removed = remove_debris(spec, root)
        if removed:
            log(f"Removed {len(removed)} unfinished file(s) a stopped preparation left: "
                f"{', '.join(sorted(os.path.basename(name.rstrip('/')) for name in removed)[:4])}")
        yield
    finally:
        lock.release()


def remove_debris(spec, root):
    """What a killed download or preparation left (call with the lock held)."""
    from tensorflow_datasets.core import constants

    downloads = os.path.join(root, "downloads")
    candidates = []
    for folder, _, _ in os.walk(os.path.join(root, spec.tfds_name)):
        candidates += [os.path.join(folder, name) for name in os.listdir(folder)
                       if name.startswith(constants.INCOMPLETE_PREFIX)]
    for folder in (downloads, *(os.path.join(downloads, name) for name in ("extracted", "manual", "mirror"))):
        if os.path.isdir(folder):
            candidates += [os.path.join(folder, name) for name in os.listdir(folder)
                           if ".tmp." in name or name.startswith(constants.INCOMPLETE_PREFIX)
                           or files.is_temporary(name)]
    for name in candidates:
        files.remove(name)
    return candidates


def _fetch_from_mirror(spec, root, infos, mirror):
    """Downloads the files from `mirror` with tfds' download manager, checked
    against the registered checksums, and links them into tfds'
    manual-download folder under their original names."""
    import tensorflow_datasets as tfds

    manual = os.path.join(root, "downloads", "manual")
    os.makedirs(manual, exist_ok=True)
    wanted = {info.filename: (_mirrored(url, info, mirror), info) for url, info in infos
              if not (os.path.exists(os.path.join(manual, info.filename))
                      and os.path.getsize(os.path.join(manual, info.filename)) == int(info.size))}
    if not wanted:
        return
    manager = tfds.download.DownloadManager(
        download_dir=os.path.join(root, "downloads", "mirror"), dataset_name=spec.tfds_name,
        url_infos={url: info for url, info in wanted.values()}, force_checksums_validation=True)
    paths = manager.download({name: url for name, (url, _) in wanted.items()})
    for name, path in paths.items():
        target = os.path.join(manual, name)
        tmp = files.temporary_name(target)
        os.link(os.fspath(path), tmp)
        os.replace(tmp, target)


def _explain(spec, root, error, mirror):
    """A `DownloadError` for what tfds raised while downloading or preparing."""
    from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

    cause = files.as_os_error(error)
    if isinstance(error, NonMatchingChecksumError):
        first = str(error).splitlines()[0]
        return DownloadError(
            f"A file of {spec.name} does not match the checksum tensorflow-datasets registers for it ({first[:200]}); "
            f"it was not used. A damaged download: run the same command again. A mirror: it must serve the "
            f"original files.")
    if cause is not None and cause.errno in files.FULL_DISK:
        return DownloadError(
            f"The disk holding {root} filled up while {spec.name} was downloaded or prepared. Free some space and "
            f"run the same command again: finished downloads are kept.")
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DownloadError(
        f"Downloading or preparing {spec.name} failed ({type(error).__name__}: {reason[:200]}). Run the same "
        f"command again: finished downloads are kept and checked. {offline_ways(spec, root)}")


def prepare(spec, data_dir=None, *, download=True, mirror=None, log=print, reach_seconds=REACH_SECONDS):
    """Makes `spec`'s tensorflow-datasets dataset ready in the data folder
    (`data_root(data_dir)`) and returns that folder: nothing to do when it is
    prepared; else, with `download`, download and prepare it (see the module),
    from `mirror` (default `KERAS_WRN_DATA_MIRROR`) when given. Raises
    `DataNotFoundError` (downloads forbidden, or ImageNet, whose files need a
    manual step) or `DownloadError`, before anything is written."""
    if not spec.tfds_name:
        raise DataNotFoundError(f"{spec.name} is not a tensorflow-datasets dataset; there is nothing to prepare.")
    root = data_root(data_dir)
    builder = _builder(spec, root)
    if builder.is_prepared():
        return root
    if spec.manual_download or not download:
        raise DataNotFoundError(missing_tfds_message(spec, data_dir))
    import tensorflow_datasets as tfds

    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    infos, download_bytes, needed = plan(spec, root, builder)
    source = f"the mirror {mirror}" if mirror else ", ".join(sorted({_host(url) for url, _ in infos}))
    log(f"Preparing {spec.name} ({spec.tfds_name}) in {root}: {human(download_bytes)} to download from {source}, "
        f"about {human(needed)} of disk for the download and the prepared dataset.")
    _check_disk(spec, root, download_bytes, needed)
    check_reachable(spec, root, [_mirrored(url, info, mirror) for url, info in infos], reach_seconds)
    tfds.display_progress_bar(sys.stderr.isatty())
    with _preparing(spec, root, log):
        builder = _builder(spec, root)  # another process may have prepared it meanwhile
        if builder.is_prepared():
            return root
        try:
            if mirror:
                _fetch_from_mirror(spec, root, infos, mirror)
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                try_download_gcs=False, force_checksums_validation=True))
        except Exception as error:  # tfds, requests and the file system raise many types
            raise _explain(spec, root, error, mirror) from error
    log(f"Prepared {spec.name} in {os.path.join(root, spec.tfds_name)}.")
    return root
