"""What Keras `fit` reads (`keras_wrn.data.feeds`): the in-memory batches,
and tf.data splits streamed in the tf.distribute trainer's order, resumable
at any batch, sharded per process, padded and weighted for testing; on tfds
mock data."""

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
tfds = pytest.importorskip("tensorflow_datasets")

from keras_wrn import data  # noqa: E402
from keras_wrn.data.feeds import EvaluationBatches, ShuffledBatches, StreamedBatches, StreamedEvaluation  # noqa: E402


@pytest.fixture
def svhn(tmp_path):
    spec = data.get_dataset_spec("svhn")
    with tfds.testing.mock_data(num_examples=40):
        yield (data.load_split(spec, "train", data_dir=str(tmp_path), training=True),
               data.load_split(spec, "test", data_dir=str(tmp_path)))


def fingerprints(images):
    """One number per image, to tell the examples apart."""
    return [int(x) for x in images.reshape(len(images), -1).astype("int64") @ np.arange(1, 32 * 32 * 3 + 1)]


def read(feed, indices=None):
    return [feed[i] for i in (range(len(feed)) if indices is None else indices)]


def test_shuffled_batches_are_full_and_reshuffled_every_epoch():
    images = np.arange(10)[:, None, None, None].astype("uint8")
    labels = np.arange(10, dtype="int32")
    batches = ShuffledBatches(images, labels, batch_size=4, seed=3)
    assert len(batches) == 2  # 10 // 4: the partial batch is left out
    first = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert all(batches[i][0].shape == (4, 1, 1, 1) for i in range(2))
    np.testing.assert_array_equal(batches[0][0][:, 0, 0, 0], batches[0][1])  # images stay with labels
    assert len(set(first)) == 8
    batches.on_epoch_end()
    second = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert not np.array_equal(first, second)
    again = ShuffledBatches(images, labels, batch_size=4, seed=3)
    np.testing.assert_array_equal(np.concatenate([again[i][1] for i in range(2)]), first)  # seeded
    with pytest.raises(ValueError, match="larger than the 10 examples"):
        ShuffledBatches(images, labels, batch_size=11)


def test_a_streamed_epoch_is_the_distributed_trainers_epoch(svhn):
    train, _ = svhn
    feed = StreamedBatches(train, 8, steps=5, seed=3)
    for epoch in (0, 1):
        feed.set_epoch(epoch)
        expected = list(data.batches(train, 8, epoch=epoch, seed=3).as_numpy_iterator())
        got = read(feed)
        assert len(got) == 5 and all(images.shape == (8, 32, 32, 3) and images.dtype == np.uint8
                                     for images, _ in got)
        for (images, labels), (want_images, want_labels) in zip(got, expected):
            np.testing.assert_array_equal(images, want_images)
            np.testing.assert_array_equal(labels, want_labels)
    first = np.concatenate([labels for _, labels in read(feed.__class__(train, 8, steps=5, seed=3))])
    assert not np.array_equal(first, np.concatenate([labels for _, labels in got]))  # each epoch its order


def test_a_stream_opened_at_a_batch_continues_the_epoch(svhn):
    """A resumed epoch, or Keras asking out of order, reads what an
    uninterrupted pass reads at that batch."""
    train, _ = svhn
    whole = read(StreamedBatches(train, 8, steps=5, seed=1))
    later = read(StreamedBatches(train, 8, steps=5, seed=1), [3, 4, 1])
    for (images, _), index in zip(later, [3, 4, 1]):
        np.testing.assert_array_equal(images, whole[index][0])


def test_each_process_streams_its_own_shard(svhn):
    """Two processes of a multi-host run: half batches, no example read by
    both in an epoch, together a whole epoch of distinct examples."""
    train, _ = svhn
    seen = []
    for process in (0, 1):
        feed = StreamedBatches(train, 8, steps=5, seed=2, process=(process, 2))
        batches = read(feed)
        assert all(images.shape == (4, 32, 32, 3) for images, _ in batches)
        seen.append({f for images, _ in batches for f in fingerprints(images)})
    assert not seen[0] & seen[1]
    assert len(seen[0]) == len(seen[1]) == 20


@pytest.mark.parametrize("share", [None, (0, 8), (8, 16)])
def test_streamed_test_batches_equal_the_in_memory_ones(svhn, share):
    """The whole test split, padded with zero-weight blanks to whole
    batches, each process's rows of each: as `EvaluationBatches` gives the
    same images from memory."""
    _, test = svhn
    images, labels = (np.concatenate(part) for part in zip(*test.source.batch(64).as_numpy_iterator()))
    streamed = StreamedEvaluation(test, 16, share=share)
    in_memory = EvaluationBatches(images, labels, 16, share=share)
    assert len(streamed) == len(in_memory) == 3
    for got, want in zip(read(streamed), read(in_memory)):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    weights = np.concatenate([w for _, _, w in read(StreamedEvaluation(test, 16))])
    assert weights.sum() == 40 and len(weights) == 48
    assert sum(len(w) for _, _, w in read(StreamedEvaluation(test, 16, max_examples=10))) == 16


def test_tfds_datasets_stream_and_the_rest_stay_in_memory():
    assert data.streams(data.get_dataset_spec("svhn"))
    assert data.streams(data.get_dataset_spec("cifar10"))
    assert not data.streams(data.get_dataset_spec("digits"))
