"""`keras-wrn train` on tensorflow-datasets data under JAX and PyTorch: the
Keras fit route streams the split through tf.data as the tf.distribute
trainer does (tfds mock data, each run in a process of its own: the slow
tier). The feeds themselves are tested in tests/data/test_feeds.py."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPOSITORY, backend_report, kill_when, metrics

# Trains on tfds' mock data: `argv` REPOSITORY DATASET RUN_DIR EPOCHS smoke|full.
# mock_data stands in for reading a prepared dataset; preparing one (the
# download) is tested with a local server in tests/data/test_download.py.
SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import keras, tensorflow_datasets as tfds
import keras_wrn.data.download as download
from keras_wrn.training.config import TrainConfig
from keras_wrn.training.trainer import train

download.prepare = lambda *args, **kwargs: None
dataset, run_dir, epochs, smoke = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "smoke"
with tfds.testing.mock_data(num_examples=48):
    model = "wrn-18-1-imagenet" if dataset == "imagenet" else "wrn-16-1"
    config = TrainConfig.from_preset(dataset, model=model, run_dir=run_dir, epochs=epochs, smoke=smoke,
                                     batch_size=8, lr_boundaries=(2,))
    result = train(config, verbose=False)
print(json.dumps({"backend": keras.backend.backend(), "steps": result.steps,
                  "trainer": json.load(open(run_dir + "/config.json"))["trainer"]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.parametrize("dataset", ["svhn", "imagenet"])
def test_tfds_datasets_train_under_jax_and_pytorch(backend, dataset, tmp_path):
    report = backend_report(SCRIPT, backend, dataset, tmp_path / "run", 2, "smoke")
    assert report["trainer"] == "keras-fit" and report["steps"] == 6
    records = metrics(tmp_path / "run")
    assert [r["epoch"] for r in records] == [1, 2] and all(r["test_error"] is not None for r in records)


@pytest.mark.slow
def test_tensorflow_and_jax_write_the_same_record_fields(tmp_path):
    """CIFAR-100 (mock): both trainers' records carry the same fields, top-5 included."""
    fields = {}
    for backend in ("tensorflow", "jax"):
        backend_report(SCRIPT, backend, "cifar100", tmp_path / backend, 2, "smoke")
        fields[backend] = [sorted(record) for record in metrics(tmp_path / backend)]
    assert fields["tensorflow"] == fields["jax"]
    assert all("test_top5_error" in record for record in fields["jax"])
    assert all(record["test_top5_error"] is not None for record in metrics(tmp_path / "jax"))


@pytest.mark.slow
def test_an_interrupted_jax_run_on_tfds_data_resumes_exactly(tmp_path):
    """SVHN (mock), 3 epochs of 6 steps under JAX, SIGKILLed once its first
    epoch is written, started again: the records of an uninterrupted run."""
    env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    backend_report(SCRIPT, "jax", "svhn", plain, 3, "full")
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, REPOSITORY, "svhn", str(killed), "3", "full"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, **env})
    assert kill_when(process, lambda: (killed / "metrics.jsonl").exists() and len(metrics(killed)) >= 1,
                     timeout=600), "the run ended before its first epoch was written"
    assert process.returncode == -signal.SIGKILL and len(metrics(killed)) < 3
    backend_report(SCRIPT, "jax", "svhn", killed, 3, "full")
    ours, theirs = metrics(killed), metrics(plain)
    assert [(r["epoch"], r["step"], r["learning_rate"]) for r in ours] == \
        [(r["epoch"], r["step"], r["learning_rate"]) for r in theirs]
    for key in ("train_loss", "test_error", "test_loss"):
        np.testing.assert_allclose([r[key] for r in ours], [r[key] for r in theirs], rtol=1e-5, atol=1e-6)
    assert json.loads((killed / "config.json").read_text())["trainer"] == "keras-fit"


# Two hosts of one JAX run on mock SVHN; each process writes the images its
# training feed handed to fit in epoch 1 (their sums, one per image).
HOST_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, tensorflow_datasets as tfds
import keras_wrn.data.download as download
from keras_wrn.data import feeds
from keras_wrn.training.config import TrainConfig
from keras_wrn.training.trainer import train

download.prepare = lambda *args, **kwargs: None
read, original = [], feeds.StreamedBatches.__getitem__
def recorded(self, index):
    images, labels = original(self, index)
    if self.epoch == 0:
        read.extend(int(v) for v in images.reshape(len(images), -1).astype("int64") @ np.arange(1, 3073))
    return images, labels
feeds.StreamedBatches.__getitem__ = recorded
with tfds.testing.mock_data(num_examples=48):
    train(TrainConfig.from_preset("svhn", model="wrn-16-1", run_dir=sys.argv[2], epochs=2, batch_size=8,
                                  lr_boundaries=(2,)), verbose=False)
print(json.dumps({"read": read}))
"""


@pytest.mark.slow
def test_two_jax_hosts_each_stream_their_own_shard(tmp_path):
    """Under a two-host start on 127.0.0.1, each host's feed reads half of
    every global batch from its own shard: no image read by both in an
    epoch, 6 steps of 4 images each; the run trains to its end."""
    from tests.training.test_distribution import free_port, multi_host

    port = free_port()
    hosts = [subprocess.Popen([sys.executable, "-c", HOST_SCRIPT, REPOSITORY, str(tmp_path / "run")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                                   **multi_host(port, 2, process_id)}) for process_id in (0, 1)]
    reads = []
    for host in hosts:
        out, err = host.communicate(timeout=600)
        assert host.returncode == 0, err[-3000:]
        reads.append(json.loads(out.strip().splitlines()[-1])["read"])
    # Keras reads the first batch once more to learn the shapes: 24 distinct images each.
    assert len(set(reads[0])) == len(set(reads[1])) == 24 and not set(reads[0]) & set(reads[1])
    assert [r["epoch"] for r in metrics(tmp_path / "run")] == [1, 2]
