"""The checkpoint stores behind the controller's one interface
(`training.checkpoints`), on a tiny model: what is saved is restored (the
weights, the optimizer's step, the random state, the closed epoch's record),
the newest two are kept, a damaged one is named and skipped, none intact is
refused, a checkpoint of another plan is refused, a full disk is one line."""

import os

import keras
import numpy as np
import pytest

from keras_wrn.training import run_folder
from keras_wrn.training.checkpoints import KEEP, KerasCheckpointStore, Restored, TFCheckpointStore
from keras_wrn.training.records import EpochRecord


def tiny(seed=0):
    """A compiled two-layer model and a seed generator's state variable (the
    kind of variable no weights file holds)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)  # as the trainers build theirs before restoring
    generator = keras.random.SeedGenerator(seed)
    return model, generator


def step(model, n=1):
    data = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    model.fit(data, np.zeros((8, 2), "float32"), batch_size=8, epochs=n, verbose=0)


def record(epoch, steps_per_epoch=1):
    return EpochRecord(epoch=epoch, step=epoch * steps_per_epoch, learning_rate=0.1, train_loss=1.0 / epoch,
                       train_error=0.5, epoch_seconds=1.0, images_per_second=8.0, test_error=0.25)


def keras_store(run_dir, model, generator, steps_per_epoch=1, warn=print):
    return KerasCheckpointStore(str(run_dir), model, [generator.state], steps_per_epoch=steps_per_epoch, warn=warn)


def test_a_keras_checkpoint_restores_everything_it_holds_and_keeps_the_newest_two(tmp_path):
    model, generator = tiny()
    store = keras_store(tmp_path, model, generator)
    assert store.restore() == Restored()  # nothing yet: a new run
    for epoch in (1, 2, 3):
        step(model)
        keras.random.uniform((1,), seed=generator)  # the state moves on
        store.save(epoch, record(epoch))
    assert run_folder.checkpoint_numbers(str(tmp_path), store.pattern) == [3, 2][:KEEP]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["epoch-2.json", "epoch-2.weights.h5", "epoch-3.json",
                                                            "epoch-3.weights.h5"]
    fresh, fresh_generator = tiny(seed=1)
    restored = keras_store(tmp_path, fresh, fresh_generator).restore()
    assert restored == Restored(3, record(3))
    assert int(fresh.optimizer.iterations) == 3
    for ours, theirs in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fresh_generator.state),
                                  keras.ops.convert_to_numpy(generator.state))


def test_a_damaged_keras_checkpoint_is_named_and_the_older_one_restores(tmp_path):
    model, generator = tiny()
    store = keras_store(tmp_path, model, generator)
    for epoch in (1, 2):
        step(model)
        store.save(epoch, record(epoch))
    newest = run_folder.fit_checkpoint(str(tmp_path), 2)
    with open(newest, "r+b") as handle:
        handle.truncate(os.path.getsize(newest) // 2)
    warnings = []
    restored = keras_store(tmp_path, *tiny(seed=1), warn=warnings.append).restore()
    assert restored == Restored(1, record(1))
    assert len(warnings) == 1 and f"checkpoint {newest} is damaged" in warnings[0]
    os.remove(run_folder.fit_checkpoint_record(str(tmp_path), 1))  # the older one's record gone too
    with pytest.raises(run_folder.RunFolderError, match=r"No intact checkpoint is left in .* \(2 damaged\)"):
        keras_store(tmp_path, *tiny(seed=1), warn=warnings.append).restore()


def test_a_keras_checkpoint_of_another_plan_is_refused(tmp_path):
    model, generator = tiny()
    step(model)
    keras_store(tmp_path, model, generator).save(1, record(1))
    with pytest.raises(run_folder.RunFolderError, match="holds 1 optimizer steps, not the 5 of epoch 1 at 5 steps"):
        keras_store(tmp_path, *tiny(seed=1), steps_per_epoch=5).restore()


def test_a_keras_checkpoint_closes_an_epoch_and_only_the_chief_writes(tmp_path):
    model, generator = tiny()
    with pytest.raises(ValueError, match="closes an epoch"):
        keras_store(tmp_path, model, generator).save(1)
    KerasCheckpointStore(str(tmp_path), model, [], steps_per_epoch=1, chief=False).save(1, record(1))
    assert not os.path.exists(tmp_path / "checkpoints")


def tf_store(run_dir, model, warn=print):
    return TFCheckpointStore(str(run_dir), {"model": model, "optimizer": model.optimizer}, warn=warn)


def test_a_tf_checkpoint_says_which_epoch_it_closed(tmp_path):
    model, _ = tiny()
    store = tf_store(tmp_path, model)
    step(model, 2)
    store.save(2)  # mid-epoch: no record
    step(model)
    store.save(3, record(1, steps_per_epoch=3))
    fresh, _ = tiny(seed=1)
    assert tf_store(tmp_path, fresh).restore() == Restored(3, record(1, steps_per_epoch=3))
    assert int(fresh.optimizer.iterations) == 3
    for ours, theirs in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    step(model, 2)
    store.save(5)
    assert run_folder.checkpoint_numbers(str(tmp_path)) == [5, 3]  # the newest two
    assert tf_store(tmp_path, tiny(seed=1)[0]).restore() == Restored(5, None)


def test_a_tf_checkpoint_onto_a_full_disk_is_one_line_and_leaves_no_debris(full_disk):
    big = keras.Sequential([keras.Input((4,)), keras.layers.Dense(300_000)])  # 4.8 MB: the disk holds 2
    store = TFCheckpointStore(str(full_disk), {"model": big})
    with pytest.raises(run_folder.RunFolderWriteError, match=r"Could not write checkpoint 7 in .*The previous "
                                                             r"checkpoint \(none yet\) and the run's other files are "
                                                             r"intact\. Free some space"):
        store.save(7)
    left = os.listdir(full_disk / "checkpoints") if os.path.isdir(full_disk / "checkpoints") else []
    assert not [name for name in left if "_temp" in name or name.startswith(".tmp")], left
