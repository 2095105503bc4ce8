"""Dataset sources and pipelines, on tfds mock data, made-up folders and the
real digits that ship with scikit-learn."""

import os
import time

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from keras_wrn import data  # noqa: E402
from keras_wrn.errors import InvalidArgumentError  # noqa: E402
from tests.helpers import write_folder  # noqa: E402


def take(dataset, n=None):
    items = list(dataset.as_numpy_iterator())
    return items if n is None else items[:n]


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100), ("svhn", 10)])
def test_tfds_sources_on_mock_data(name, classes, tmp_path):
    spec = data.get_dataset_spec(name)
    with tfds.testing.mock_data(num_examples=24):
        train = data.load_split(spec, "train", data_dir=str(tmp_path), training=True)
        test = data.load_split(spec, "test", data_dir=str(tmp_path))
        assert train.num_examples == 24
        assert len(train.class_names) == classes
        batch_images, batch_labels = take(data.batches(train, 8))[0]
        assert batch_images.shape == (8, 32, 32, 3) and batch_images.dtype == np.uint8
        assert batch_labels.dtype == np.int32 and batch_labels.max() < classes
        assert len(take(data.batches(train, 8))) == 3
        # Evaluation keeps every example, in a fixed order.
        first, second = take(data.batches(test, 10)), take(data.batches(test, 10))
        assert [len(b[1]) for b in first] == [10, 10, 4]
        np.testing.assert_array_equal(first[0][0], second[0][0])


def test_svhn_trains_on_train_plus_extra():
    spec = data.get_dataset_spec("svhn")
    assert spec.train_split == "train+extra"
    assert (spec.flip, spec.crop_padding) == (False, 0)
    assert spec.normalization() == ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))


def test_training_order_is_per_epoch_and_resumable():
    train = data.load_split(data.get_dataset_spec("digits"), "train", training=True)
    epoch0 = take(data.batches(train, 64, epoch=0, seed=1))
    again = take(data.batches(train, 64, epoch=0, seed=1))
    epoch1 = take(data.batches(train, 64, epoch=1, seed=1))
    resumed = take(data.batches(train, 64, epoch=0, seed=1, skip_steps=5))
    assert len(epoch0) == train.num_examples // 64
    np.testing.assert_array_equal(epoch0[3][1], again[3][1])
    assert not np.array_equal(epoch0[0][1], epoch1[0][1])
    assert len(resumed) == len(epoch0) - 5
    for a, b in zip(resumed, epoch0[5:]):
        np.testing.assert_array_equal(a[0], b[0])


def test_sharding_partitions_an_epoch():
    train = data.load_split(data.get_dataset_spec("digits"), "train", training=True)
    contexts = [tf.distribute.InputContext(2, i, 2) for i in range(2)]
    shards = [take(data.batches(train, 64, input_context=c)) for c in contexts]
    assert all(b[0].shape[0] == 32 for shard in shards for b in shard)
    assert len(shards[0]) == len(shards[1]) == train.num_examples // 64
    seen = [{image.tobytes() for batch in shard for image in batch[0]} for shard in shards]
    assert len(seen[0]) > 600 and not seen[0] & seen[1]  # disjoint halves of the epoch


def test_digits_are_the_real_embedded_data():
    spec = data.get_dataset_spec("digits")
    train = data.load_split(spec, "train", training=True)
    test = data.load_split(spec, "test")
    assert (train.num_examples, test.num_examples) == (1347, 450)
    images, labels = take(test.source.batch(450))[0]
    assert images.shape == (450, 8, 8, 1) and images.dtype == np.uint8
    assert images.max() == 255 and set(labels) == set(range(10))


def test_imagenet_crops_on_mock_data(tmp_path):
    spec = data.get_dataset_spec("imagenet")
    with tfds.testing.mock_data(num_examples=4):
        train = data.load_split(spec, "train", data_dir=str(tmp_path), training=True)
        images, _ = take(data.batches(train, 2))[0]
        assert images.shape == (2, 224, 224, 3)
        test = data.load_split(spec, "test", data_dir=str(tmp_path))
        assert take(data.batches(test, 2))[0][0].shape == (2, 224, 224, 3)


def test_missing_data_fails_fast_with_directions(tmp_path):
    empty = tmp_path / "tfds"
    start = time.monotonic()
    with pytest.raises(data.DataNotFoundError) as error:
        data.load_split(data.get_dataset_spec("cifar10"), "train", data_dir=str(empty))
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert str(empty) in message and "keras-wrn prepare cifar10" in message and "--data-dir" in message
    assert not empty.exists() or not any(empty.iterdir())
    with pytest.raises(data.DataNotFoundError, match="manual download"):
        data.load_split(data.get_dataset_spec("imagenet"), "train", data_dir=str(empty))


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(data.UnknownDatasetError, match="cifar10, cifar100, svhn, imagenet, digits"):
        data.get_dataset_spec("mnist")


def test_image_folder_dataset(tmp_path):
    write_folder(tmp_path)
    spec = data.get_dataset_spec(str(tmp_path))
    assert (spec.num_classes, spec.image_size) == (2, 12)
    split = data.load_split(spec, "train", training=True)
    assert split.class_names == ["cat", "dog"] and split.num_examples == 6
    images, labels = take(data.batches(split, 3))[0]
    assert images.shape == (3, 12, 12, 3) and images.dtype == np.uint8


def test_image_folder_without_test_split(tmp_path):
    write_folder(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "test")
    with pytest.raises(data.DataNotFoundError, match="test/ is missing"):
        data.get_dataset_spec(str(tmp_path))


def test_evaluation_batches_pad_to_whole_steps_with_zero_weight():
    test = data.load_split(data.get_dataset_spec("digits"), "test")
    contexts = [tf.distribute.InputContext(2, i, 4) for i in range(2)]  # 2 workers x 2 replicas
    for context in contexts:
        batches = take(data.evaluation_batches(test, 64, input_context=context))
        assert all(b[0].shape == (16, 8, 8, 1) for b in batches)
        assert len(batches) % 2 == 0  # whole steps for this worker's 2 replicas
        weights = np.concatenate([b[2] for b in batches])
        assert weights.sum() == 450 and set(weights) == {0.0, 1.0}
        assert len(weights) == 480  # 450 padded to a multiple of 32
        labels = np.concatenate([b[1] for b in batches])[:450]
        np.testing.assert_array_equal(labels, np.concatenate([b[1] for b in take(test.source.batch(450))]))


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_read_image_arrays_labels_by_sorted_class_folder(tmp_path):
    from PIL import Image

    from keras_wrn.data.datasets import read_image_arrays

    write_folder(tmp_path, classes=("dog", "cat"), per_class=2, size=12)
    Image.fromarray(np.full((20, 10, 3), 7, "uint8")).save(tmp_path / "train" / "cat" / "big.png")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    images, labels = read_image_arrays(str(tmp_path), "train", image_size=12)
    assert images.shape == (5, 12, 12, 3) and images.dtype == np.uint8 and labels.dtype == np.int32
    assert labels.tolist() == [0, 0, 0, 1, 1]  # cat (3 files, one resized), then dog
    with Image.open(tmp_path / "train" / "dog" / "0.png") as first_dog:
        np.testing.assert_array_equal(images[3], np.asarray(first_dog))
    with pytest.raises(data.DataNotFoundError, match="No validation/ folder"):
        read_image_arrays(str(tmp_path), "validation")


def test_cifar10_from_an_image_folder_copy(tmp_path):
    """--data-dir may name CIFAR-10 as image files (e.g. the JPEG copy): the
    cifar10 spec (mean/std, 32x32, augmentation) stays, only the source changes."""
    from keras_wrn.data.datasets import is_image_folder_copy

    spec = data.get_dataset_spec("cifar10")
    write_folder(tmp_path, classes=CIFAR10_CLASSES, per_class=2, size=32)
    assert is_image_folder_copy(spec, str(tmp_path))
    assert not is_image_folder_copy(data.get_dataset_spec("cifar100"), str(tmp_path))
    test = data.load_split(spec, "test", data_dir=str(tmp_path))
    assert test.num_examples == 20 and test.class_names == list(CIFAR10_CLASSES)
    images, labels = take(data.batches(test, 20))[0]
    assert images.shape == (20, 32, 32, 3) and sorted(labels.tolist()) == sorted(list(range(10)) * 2)


def test_a_copy_packed_as_an_archive_is_unpacked_once(tmp_path):
    """`--data-dir cifar10-jpeg.tar.gz`: unpacked into keras-wrn's cache once
    per archive content, then read as the folder; a damaged archive is named."""
    import tarfile

    from keras_wrn.data.datasets import unpacked

    write_folder(tmp_path / "cifar10-jpeg", classes=CIFAR10_CLASSES, per_class=1, size=32)
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar10-jpeg", arcname="cifar10-jpeg")
    import subprocess
    import sys

    from keras_wrn.cache import cache_dir
    from keras_wrn.data import datasets

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    cache = cache_dir("data")
    for pid in (dead, "1"):  # a killed unpack's debris, and a live process's work
        os.makedirs(os.path.join(cache, f".tmp-{pid}-half"), exist_ok=True)
    hashed = datasets._archive_digest.cache_info().misses
    folder = unpacked(str(archive))
    assert not os.path.exists(os.path.join(cache, f".tmp-{dead}-half"))
    assert os.path.isdir(os.path.join(cache, ".tmp-1-half"))
    os.rmdir(os.path.join(cache, ".tmp-1-half"))
    assert os.path.basename(folder) == "cifar10-jpeg" and os.path.isdir(os.path.join(folder, "test"))
    assert os.path.basename(os.path.dirname(folder)).startswith("cifar10-jpeg-")  # named by content hash
    made = os.stat(folder).st_mtime_ns
    assert unpacked(str(archive)) == folder and os.stat(folder).st_mtime_ns == made  # not unpacked again
    assert datasets._archive_digest.cache_info().misses == hashed + 1  # nor hashed again
    assert not [name for name in os.listdir(os.path.dirname(os.path.dirname(folder))) if name.startswith(".tmp")]
    test = data.load_split(data.get_dataset_spec("cifar10"), "test", data_dir=str(archive))
    assert test.num_examples == 10 and test.class_names == list(CIFAR10_CLASSES)
    assert unpacked(str(tmp_path)) == str(tmp_path)  # a folder is itself

    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(InvalidArgumentError, match="Cannot unpack .*truncated.tar.gz.*copy it again"):
        unpacked(str(truncated))
    with pytest.raises(data.DataNotFoundError, match="No such archive"):
        unpacked(str(tmp_path / "missing.tar.gz"))
