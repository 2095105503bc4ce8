"""Downloading and preparing the paper's datasets with tensorflow-datasets'
own download manager and builders, from a real HTTP server on 127.0.0.1 that
serves small files in the datasets' real formats (CIFAR's binary tarballs,
SVHN's `.mat` files): no test reaches a host outside this machine.

The small files cannot match the checksums tfds registers for the real ones,
so the commands that download run in a process whose tensorflow-datasets
registers the test files' checksums instead, in its own checksums files (the
way tfds registers any dataset's files): a copy of the installed package made
of links, but for those files. Everything else is the installed tfds."""

import functools
import hashlib
import http.server
import io
import os
import signal
import socket
import subprocess
import tarfile
import threading
import time

import numpy as np
import pytest

pytest.importorskip("tensorflow_datasets")

from keras_wrn import data  # noqa: E402
from keras_wrn.data import download  # noqa: E402
from tests.helpers import CLI, ENV, invoke, kill_when  # noqa: E402

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"
SVHN_COUNTS = {"train": 7, "test": 5, "extra": 9}


def cifar_tarball(folder, name, prefix, files, labels_per_record):
    """A CIFAR binary tarball: records of label byte(s) then 3x32x32 pixels."""
    rng = np.random.default_rng(len(name))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, count in files.items():
            if member.endswith(".txt"):
                payload = "\n".join(f"class_{i}" for i in range(count)).encode()
            else:
                records = [np.concatenate([rng.integers(0, 10, labels_per_record), rng.integers(0, 256, 3072)])
                           for _ in range(count)]
                payload = np.stack(records).astype("uint8").tobytes()
            info = tarfile.TarInfo(prefix + member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    (folder / name).write_bytes(buffer.getvalue())


def svhn_mat(folder, split, count):
    """SVHN's cropped-digits file: X (32, 32, 3, N) uint8, y (N, 1) in 1..10 (10 is the digit 0)."""
    from scipy.io import savemat

    rng = np.random.default_rng(count)
    images = rng.integers(0, 256, (32, 32, 3, count)).astype("uint8")
    savemat(folder / f"{split}_32x32.mat", {"X": images, "y": (np.arange(count) % 10 + 1)[:, None]})
    return images


class Mirror:
    """A folder served over HTTP on 127.0.0.1, recording the paths asked for."""

    def __init__(self, folder):
        self.folder, self.requests = folder, []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                mirror.requests.append((self.command, self.path))

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=folder))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def gets(self):
        return [path for command, path in self.requests if command == "GET"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Small CIFAR-10, CIFAR-100 and SVHN files, in their real formats, on a
    mirror; the SVHN pixels, to compare with what tfds prepares."""
    folder = tmp_path_factory.mktemp("mirror")
    cifar_tarball(folder, "cifar-10-binary.tar.gz", "cifar-10-batches-bin/",
                  {**{f"data_batch_{i}.bin": 2 for i in range(1, 6)}, "test_batch.bin": 4, "batches.meta.txt": 10}, 1)
    cifar_tarball(folder, "cifar-100-binary.tar.gz", "cifar-100-binary/",
                  {"train.bin": 6, "test.bin": 3, "coarse_label_names.txt": 20, "fine_label_names.txt": 100}, 2)
    pixels = {split: svhn_mat(folder, split, count) for split, count in SVHN_COUNTS.items()}
    mirror = Mirror(folder)
    yield mirror, pixels
    mirror.server.shutdown()


def checksum_line(url, path):
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"{url}\t{path.stat().st_size}\t{digest}\t{path.name}\n"


@pytest.fixture(scope="module")
def tfds_with_test_checksums(served, tmp_path_factory):
    """A PYTHONPATH whose tensorflow_datasets is the installed one, linked
    file by file, with the served files' checksums registered in place of
    the real files' (cifar10, cifar100, svhn_cropped)."""
    import tensorflow_datasets

    mirror, _ = served
    source = os.path.dirname(tensorflow_datasets.__file__)
    site = tmp_path_factory.mktemp("site")
    registered = {
        "url_checksums/cifar10.txt": checksum_line(CIFAR10_URL, mirror.folder / "cifar-10-binary.tar.gz"),
        "url_checksums/cifar100.txt": checksum_line(CIFAR100_URL, mirror.folder / "cifar-100-binary.tar.gz"),
        "datasets/svhn_cropped/checksums.tsv": "".join(
            checksum_line(f"{SVHN_URL}{split}_32x32.mat", mirror.folder / f"{split}_32x32.mat")
            for split in sorted(SVHN_COUNTS)),
    }

    def link_tree(relative):
        """`relative` as a real folder of links to the installed entries, but
        for the ones on the way to a registered file."""
        (site / "tensorflow_datasets" / relative).mkdir(parents=True, exist_ok=True)
        for entry in os.listdir(os.path.join(source, relative)):
            path = os.path.join(relative, entry) if relative else entry
            if path in registered:
                (site / "tensorflow_datasets" / path).write_text(registered[path])
            elif any(name.startswith(path + "/") for name in registered):
                link_tree(path)
            else:
                os.symlink(os.path.join(source, path), site / "tensorflow_datasets" / path)

    link_tree("")
    return str(site)


def run_command(args, site, mirror_url, timeout=600):
    env = {**ENV, "PYTHONPATH": os.pathsep.join([site, os.environ.get("PYTHONPATH", "")]),
           download.MIRROR_ENV: mirror_url}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def debris(root):
    return [os.path.join(folder, name) for folder, folders, names in os.walk(root) for name in folders + names
            if name.startswith("incomplete.") or ".tmp." in name or name.startswith(".tmp-")]


@pytest.mark.slow
def test_the_headline_command_downloads_svhn_prepares_it_and_trains(served, tfds_with_test_checksums, tmp_path):
    """`keras-wrn train --dataset svhn` with the data missing: tfds' download
    manager fetches the three files from the mirror, checksums checked, its
    builder prepares train, test and extra, and the run trains on train +
    extra; the prepared pixels are the served ones."""
    import tensorflow_datasets as tfds

    mirror, pixels = served
    root = tmp_path / "tfds"
    result = run_command(["train", "--dataset", "svhn", "--model", "wrn-16-4", "--smoke", "--no-xla", "--data-dir",
                          root, "--run-dir", tmp_path / "run"], tfds_with_test_checksums, mirror.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Preparing svhn (svhn_cropped) in {root}: " in result.stdout
    assert f"to download from the mirror {mirror.url}" in result.stdout and "Done: 6 steps" in result.stdout
    assert sorted(path for path in mirror.gets()) == ["/extra_32x32.mat", "/test_32x32.mat", "/train_32x32.mat"]
    builder = tfds.builder("svhn_cropped", data_dir=str(root))
    assert builder.is_prepared() and not debris(root)
    for split, count in SVHN_COUNTS.items():
        images = np.stack([x for x, _ in tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True))])
        assert len(images) == count
        assert {x.tobytes() for x in images} == {x.tobytes() for x in np.moveaxis(pixels[split], -1, 0)}
    # Prepared once: nothing is downloaded again, even with downloads forbidden.
    assert download.prepare(data.get_dataset_spec("svhn"), str(root), download=False) == str(root)
    assert len(mirror.gets()) == 3


def test_prepare_readies_cifar_for_nodes_without_network(served, tfds_with_test_checksums, tmp_path):
    """`keras-wrn prepare cifar10 cifar100`, the command for a cluster's
    login node: CIFAR's binary tarballs, extracted and prepared by tfds."""
    import tensorflow_datasets as tfds

    mirror, _ = served
    root = tmp_path / "tfds"
    result = run_command(["prepare", "cifar10", "cifar100", "--data-dir", root], tfds_with_test_checksums, mirror.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"cifar10 is ready in {root}/cifar10" in result.stdout and "cifar100 is ready" in result.stdout
    splits = {name: {split: info.num_examples for split, info in tfds.builder(name, data_dir=str(root)).info.splits
                     .items()} for name in ("cifar10", "cifar100")}
    assert splits == {"cifar10": {"train": 10, "test": 4}, "cifar100": {"train": 6, "test": 3}}
    assert not debris(root)


def test_a_closed_port_is_one_clear_error_at_once_and_nothing_is_written(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the probe is
    root = tmp_path / "tfds"
    started = time.monotonic()
    result = invoke("prepare", "svhn", "--data-dir", root, "--data-mirror", f"http://127.0.0.1:{port}/")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 2  # the plan, then the error
    assert f"Error: Cannot download svhn: 127.0.0.1:{port} does not answer" in result.output
    assert "keras-wrn prepare svhn --data-dir DIR" in result.output and download.MIRROR_ENV in result.output
    assert not root.exists()


def test_a_host_that_does_not_answer_is_one_clear_error_within_the_time_allowed(tmp_path):
    """A server that accepts the connection and never answers."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        spec = data.get_dataset_spec("cifar10")
        started = time.monotonic()
        with pytest.raises(download.DownloadError, match=r"127\.0\.0\.1:\d+ does not answer \(no answer within"):
            download.prepare(spec, str(tmp_path / "tfds"), mirror=f"http://127.0.0.1:{silent.getsockname()[1]}/",
                             log=lambda *_: None, reach_seconds=1.5)
        assert time.monotonic() - started < 5
        assert download.REACH_SECONDS <= 10 and not (tmp_path / "tfds").exists()
    finally:
        silent.close()


def test_a_disk_that_cannot_hold_the_dataset_is_refused_at_once_with_the_figures(full_disk):
    result = invoke("prepare", "svhn", "--data-dir", full_disk / "tfds", "--data-mirror", "http://127.0.0.1:9/")
    assert result.exit_code == 1
    assert f"Error: Not enough disk space in {full_disk}/tfds for svhn: it needs about 2.56 GiB (1.47 GiB to " \
           f"download, 1.09 GiB prepared) and" in result.output
    assert os.listdir(full_disk) == []


def test_downloads_can_be_forbidden_and_imagenet_keeps_its_manual_step(tmp_path):
    result = invoke("train", "--dataset", "cifar10", "--no-download", "--data-dir", tmp_path, "--run-dir",
                    tmp_path / "run")
    assert result.exit_code == 1 and "Run `keras-wrn prepare cifar10`" in result.output
    assert not (tmp_path / "run").exists()
    result = invoke("prepare", "imagenet", "--data-dir", tmp_path)
    assert result.exit_code == 1 and "ImageNet needs a manual download: place ILSVRC2012_img_train.tar" in result.output
    result = invoke("prepare", "digits")
    assert result.exit_code == 2 and "not a tensorflow-datasets dataset" in result.output


@pytest.mark.slow
def test_a_preparation_killed_midway_is_redone_whole_by_the_next_command(served, tfds_with_test_checksums, tmp_path):
    """SIGKILL while tfds writes the prepared dataset (its `incomplete.*`
    folder exists): the dataset is not there, and the same command removes
    the debris, reuses the checked downloads and prepares it whole."""
    import tensorflow_datasets as tfds

    mirror, _ = served
    root = tmp_path / "tfds"
    env = {**ENV, "PYTHONPATH": tfds_with_test_checksums, download.MIRROR_ENV: mirror.url}
    process = subprocess.Popen([*CLI, "prepare", "svhn", "--data-dir", str(root)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env)
    folder = root / "svhn_cropped"
    killed = kill_when(process, lambda: folder.is_dir() and any(n.startswith("incomplete.")
                                                             for n in os.listdir(folder)),
                       timeout=300, poll=0.02)
    assert killed and process.returncode == -signal.SIGKILL, "the preparation ended before it could be killed"
    assert not tfds.builder("svhn_cropped", data_dir=str(root)).is_prepared() and debris(root)
    downloaded = len(mirror.gets())
    result = run_command(["prepare", "svhn", "--data-dir", root], tfds_with_test_checksums, mirror.url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Removed" in result.stdout and not debris(root)
    assert len(mirror.gets()) == downloaded  # the finished, checked downloads were reused
    builder = tfds.builder("svhn_cropped", data_dir=str(root))
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == SVHN_COUNTS
