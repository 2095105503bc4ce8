"""A run folder survives the ordinary accidents: faults injected for real
(a second process, SIGKILL, damaged checkpoints and files, a full disk),
each checked for its outcome and for what was already written."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tensorflow")

from keras_wrn.training import run_folder  # noqa: E402
from keras_wrn.training.config import TrainConfig  # noqa: E402
from tests.helpers import invoke, metrics, tensorboard_scalars  # noqa: E402


def smoke(run_dir, **overrides):
    return TrainConfig.from_preset("digits", run_dir=str(run_dir), smoke=True, xla=False, **overrides)


@pytest.fixture
def run(finished_smoke_run, tmp_path):
    """A copy of the finished run to damage."""
    copy = tmp_path / "run"
    shutil.copytree(finished_smoke_run, copy)
    return copy


def train_again(run_dir):
    from keras_wrn.training.trainer import train

    return train(smoke(run_dir), verbose=False)


def test_a_damaged_newest_checkpoint_is_named_and_the_older_one_resumes(run, capsys):
    before = metrics(run)
    data = run / "checkpoints" / "ckpt-6.data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
    result = train_again(run)
    assert f"{run}/checkpoints/ckpt-6 is damaged" in capsys.readouterr().err
    assert result.resumed_from_step == 3 and result.steps == 6
    after = metrics(run)
    assert after[:2] == before  # nothing dropped
    assert [r["epoch"] for r in after] == [1, 2, 2] and after[2]["redone"] is True


def test_the_warning_names_the_damaged_checkpoint(run, capsys):
    (run / "checkpoints" / "ckpt-6.index").write_bytes(b"")
    train_again(run)
    assert f"{run}/checkpoints/ckpt-6 is damaged" in capsys.readouterr().err


def test_a_garbled_checkpoint_state_file_does_not_restart_the_run(run):
    (run / "checkpoints" / "checkpoint").write_text("garbage {{{")
    before = metrics(run)
    result = train_again(run)
    assert result.resumed_from_step == 6 and result.steps == 6
    assert metrics(run) == before


def test_with_no_intact_checkpoint_left_the_run_is_refused(run):
    for number in (3, 6):
        (run / "checkpoints" / f"ckpt-{number}.index").write_bytes(b"x")
    before = metrics(run)
    result = invoke("train", "--smoke", "--no-xla", "--run-dir", run)
    assert result.exit_code == 1
    assert "No intact checkpoint is left" in result.output and "--run-dir" in result.output
    assert metrics(run) == before


def test_debris_of_killed_saves_is_removed_by_the_next_run(run):
    (run / ".tmp-99999-last.weights.h5").write_bytes(b"half")
    (run / "checkpoints" / "ckpt-9_temp").mkdir()
    train_again(run)
    assert not [n for n in os.listdir(run) if n.startswith(".tmp-")]
    assert not [n for n in os.listdir(run / "checkpoints") if "_temp" in n]


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from keras_wrn.training.run_folder import RunLock
    RunLock(sys.argv[1]).acquire()
    print("holding", flush=True)
    time.sleep(120)
""")


def test_a_second_process_is_refused_and_a_killed_holders_lock_is_taken_over(run, capsys):
    from keras_wrn.training.trainer import train

    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        before = {name: (run / name).stat().st_mtime_ns for name in ("config.json", "metrics.jsonl")}
        with pytest.raises(run_folder.RunFolderLockedError, match=f"pid {holder.pid}"):
            train(smoke(run), verbose=False)
        assert {name: (run / name).stat().st_mtime_ns for name in before} == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    capsys.readouterr()
    result = train(smoke(run), verbose=True)
    assert result.steps == 6
    assert f"Took over the run folder's lock from a process that no longer runs (pid {holder.pid}" in \
        capsys.readouterr().out


def test_a_write_that_hits_a_size_limit_keeps_the_previous_file(tmp_path):
    """A full disk, injected as the file-size limit of the writing process."""
    target = tmp_path / "metrics.jsonl"
    target.write_text("the previous version\n")
    code = textwrap.dedent("""
        import resource, signal, sys
        from keras_wrn.training import run_folder
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        try:
            run_folder.write_text(sys.argv[1], "x" * 5000)
        except run_folder.RunFolderWriteError as error:
            print(error)
    """)
    result = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, timeout=60)
    assert f"Could not write {target}: File too large" in result.stdout, result.stderr
    assert target.read_text() == "the previous version\n"
    assert os.listdir(tmp_path) == ["metrics.jsonl"]


def test_a_full_disk_is_one_clear_error_with_no_debris(full_disk):
    result = invoke("train", "--smoke", "--no-xla", "--run-dir", full_disk / "run")
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "run the same command again" in result.output
    assert len(result.output.strip().splitlines()) == 2  # the run's first line, then the error
    leftovers = [name for _, folders, files in os.walk(full_disk) for name in folders + files
                 if name.startswith(".tmp-") or "_temp" in name]
    assert leftovers == []


def test_a_damaged_model_file_is_named(run):
    (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:1000])
    result = invoke("evaluate", run)
    assert result.exit_code == 1
    assert f"Cannot read {run}/model.keras: it is damaged" in result.output
    assert invoke("evaluate", run, "--weights", "last", "--json").exit_code == 0


def test_killed_between_the_epoch_checkpoint_and_its_files_the_line_comes_back(run):
    """The epoch-end checkpoint carries its epoch's record: simulate a kill
    after it was written but before metrics.jsonl was."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(lines[0] + "\n")
    result = train_again(run)
    assert result.resumed_from_step == 6
    assert metrics(run) == [json.loads(line) for line in lines]


def test_a_damaged_image_in_a_folder_dataset_is_named_before_anything_is_written(tmp_path):
    from tests.helpers import write_folder

    write_folder(tmp_path / "images", per_class=3, size=8)
    bad = tmp_path / "images" / "train" / "dog" / "1.png"
    bad.write_bytes(bad.read_bytes()[:60])  # truncated
    result = invoke("train", "--smoke", "--dataset", tmp_path / "images", "--run-dir", tmp_path / "run")
    assert result.exit_code == 1
    assert f"{bad} is damaged or not an image" in result.output
    assert not (tmp_path / "run").exists()
    (tmp_path / "images" / "test" / "cat" / "notes.txt").write_text("not an image")
    bad.unlink()
    result = invoke("train", "--smoke", "--dataset", tmp_path / "images", "--run-dir", tmp_path / "run")
    assert "notes.txt is not an image file" in result.output and not (tmp_path / "run").exists()


def test_an_empty_class_folder_is_named_before_anything_is_written(tmp_path):
    from tests.helpers import write_folder

    write_folder(tmp_path / "images", classes=("a", "b"), per_class=2, size=8)
    for image in (tmp_path / "images" / "test" / "b").iterdir():
        image.unlink()
    result = invoke("train", "--smoke", "--dataset", tmp_path / "images", "--run-dir", tmp_path / "run")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert f"The class folder {tmp_path / 'images' / 'test' / 'b'} holds no images" in result.output
    assert not (tmp_path / "run").exists()


def test_a_dataset_path_that_does_not_exist_says_so(tmp_path):
    result = invoke("train", "--dataset", tmp_path / "nowhere", "--run-dir", tmp_path / "run")
    assert result.exit_code == 1
    assert f"No such folder: '{tmp_path / 'nowhere'}'" in result.output


def test_tensorboard_scalars_on_a_full_disk_are_one_clear_error(full_disk):
    from keras_wrn.training import logs

    scalars = logs.TensorBoardScalars(str(full_disk / "tensorboard"))
    try:
        scalars.write({"epoch": 1, "learning_rate": 0.1, "train_loss": 2.0})
        ballast = os.open(full_disk / "ballast", os.O_WRONLY | os.O_CREAT)
        try:  # fill the disk
            while os.write(ballast, b"\0" * 65536):
                pass
        except OSError:
            pass
        finally:
            os.close(ballast)
        with pytest.raises(run_folder.RunFolderWriteError, match="No space left on device.*same command again"):
            for epoch in range(2, 2000):
                scalars.write({"epoch": epoch, "learning_rate": 0.1, "train_loss": 2.0, "test_error": 0.5})
        assert tensorboard_scalars(full_disk)["learning_rate"][1] == pytest.approx(0.1)  # kept
    finally:
        with contextlib.suppress(OSError):
            scalars.close()


def test_a_damaged_zca_file_is_one_line_naming_it_and_the_fix(tmp_path):
    """A truncated `zca.npz` (a kill or a full disk while another tool copied
    it): the one reader both training and evaluation use names it and the
    fix, instead of numpy's BadZipFile traceback."""
    import numpy as np

    from keras_wrn.training import run_folder

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert run_folder.read_zca(str(run_dir)) is None
    target = run_dir / run_folder.ZCA
    np.savez(target, mean=np.zeros(4, "float32"), matrix=np.eye(4, dtype="float32"))
    mean, matrix = run_folder.read_zca(str(run_dir))
    assert mean.shape == (4,) and matrix.shape == (4, 4)
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(run_folder.RunFolderError, match=r"zca.npz is damaged \(BadZipFile.*Delete it and run the same "
                                                        r"command again"):
        run_folder.read_zca(str(run_dir))


@pytest.mark.slow
def test_a_damaged_zca_file_ends_the_command_in_one_line(tmp_path):
    from tests.helpers import invoke

    run_dir = tmp_path / "run"
    assert invoke("train", "--smoke", "--zca", "--run-dir", run_dir).exit_code == 0
    target = run_dir / "zca.npz"
    target.write_bytes(target.read_bytes()[:100])
    for args in (("evaluate", run_dir), ("train", "--smoke", "--zca", "--run-dir", run_dir)):
        result = invoke(*args)
        assert result.exit_code == 1 and "zca.npz is damaged" in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
