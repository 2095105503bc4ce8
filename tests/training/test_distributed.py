"""Training runs for real on the embedded digits: artifacts, strategies,
crash and resume, bad input. Checks that need no process of their own run
the command in this process; kill and resume and multi-worker are `slow`."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

pytest.importorskip("tensorflow")

from keras_wrn.training import logs, run_folder  # noqa: E402
from keras_wrn.training.config import TrainConfig  # noqa: E402
from tests.helpers import CLI, ENV, failure, invoke, lose_a_peer, metrics, run_cli, run_peers, tensorboard_scalars, write_folder  # noqa: E402


@pytest.fixture
def smoke_run(finished_smoke_run):
    """The shared finished smoke run (conftest), as a string path."""
    return str(finished_smoke_run)


def folder_state(run_dir):
    """Every file's modification time: what a refused command must not touch
    (but the lock, which it takes before it reads the folder)."""
    return {os.path.join(root, name): os.stat(os.path.join(root, name)).st_mtime_ns
            for root, _, names in os.walk(run_dir) for name in names if name != ".lock"}


def test_smoke_run_writes_a_complete_run_folder(smoke_run):
    from keras_wrn.training.trainer import train

    for name in ("config.json", "metrics.jsonl", "curves.png", "model.keras",
                 "best.weights.h5", "last.weights.h5"):
        assert os.path.getsize(os.path.join(smoke_run, name)) > 0, name
    records = metrics(smoke_run)
    assert [r["epoch"] for r in records] == [1, 2] and records[-1]["step"] == 6
    scalars = tensorboard_scalars(smoke_run)
    assert sorted(scalars) == sorted(logs.SCALARS)
    assert scalars["test_error"] == pytest.approx({r["epoch"]: r["test_error"] for r in records})
    saved = json.load(open(os.path.join(smoke_run, "config.json")))
    assert saved["config"]["dataset"] == "digits" and saved["environment"]["tensorflow"]
    assert saved["config"]["xla"] is True  # the default, resolved: one device compiles
    assert not [f for f in os.listdir(smoke_run) if ".tmp" in f]
    # Running the finished run again trains no more and keeps every record.
    again = train(TrainConfig.from_preset("digits", run_dir=smoke_run, smoke=True), verbose=False)
    assert again.steps == 6 and again.resumed_from_step == 6
    assert metrics(smoke_run) == records and run_folder.checkpoint_numbers(smoke_run) == [6, 3]


@pytest.mark.slow
def test_mirrored_strategy_over_two_cpu_devices(tmp_path):
    result = run_cli("train", "--smoke", "--strategy", "mirrored", "--cpu-devices", "2",
                     "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 0, failure(result.stderr)
    saved = json.load(open(tmp_path / "run" / "config.json"))
    assert saved["replicas"] == 2 and saved["global_batch_size"] == 4
    assert saved["config"]["xla"] is False  # XLA has no collectives on CPU: off by default here
    assert metrics(tmp_path / "run")[-1]["step"] == 6


@pytest.mark.slow
def test_xla_asked_for_where_it_cannot_run_is_refused_before_anything_is_written(tmp_path):
    result = run_cli("train", "--smoke", "--strategy", "mirrored", "--cpu-devices", "2", "--xla",
                     "--run-dir", str(tmp_path / "run"))
    assert result.returncode != 0
    assert "XLA cannot compile a step of 2 replicas on CPU devices" in result.stderr
    assert "--no-xla" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "run")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_strategy_with_two_workers(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    run_dir = str(tmp_path / "run")
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [*CLI, "train", "--smoke", "--strategy", "multi-worker", "--run-dir", run_dir],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**ENV, "TF_CONFIG": tf_config}))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-2000:]
        assert "Done: 6 steps" in out
    # The workers trained one model in lockstep: the same losses.
    losses = [[line.split(", ")[0] for line in out.splitlines() if line.startswith("epoch")]
              for out, _ in outputs]
    assert len(losses[0]) == 2 and losses[0] == losses[1]
    assert json.load(open(os.path.join(run_dir, "config.json")))["replicas"] == 2
    assert not os.path.exists(os.path.join(run_dir, ".workers", "worker-1"))


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_step_count_and_learning_rate(tmp_path):
    run_dir = str(tmp_path / "run")
    args = ["train", "--model", "wrn-40-1", "--batch-size", "128", "--epochs", "3",
            "--lr-boundaries", "2,3", "--checkpoint-steps", "4", "--run-dir", run_dir]
    steps_per_epoch = 1347 // 128
    total = 3 * steps_per_epoch
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    checkpoints = os.path.join(run_dir, "checkpoints")
    killed_after = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and process.poll() is None:
        numbers = sorted(int(f.split("-")[1].split(".")[0]) for f in os.listdir(checkpoints)
                         if f.startswith("ckpt-") and f.endswith(".index")) if os.path.isdir(checkpoints) else []
        if any(n % steps_per_epoch for n in numbers) and numbers[-1] > steps_per_epoch:
            process.send_signal(signal.SIGKILL)  # mid-epoch, in epoch 2
            process.wait()
            killed_after = numbers[-1]
            break
        time.sleep(0.2)
    assert killed_after is not None, "the run never wrote a mid-epoch checkpoint"
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))

    resumed = run_cli(*args)
    assert resumed.returncode == 0, failure(resumed.stderr)
    assert "Resuming" in resumed.stdout and f"Done: {total} steps" in resumed.stdout
    # The uninterrupted run's schedule ends at 0.1 * 0.2**2 = 0.004.
    assert "final learning rate 0.004," in resumed.stdout
    records = metrics(run_dir)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["step"] for r in records] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert records[-1]["learning_rate"] == pytest.approx(0.004)
    assert any(r["resumed_mid_epoch"] for r in records)


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist"], "Unknown dataset 'mnist'"),
    (["--model", "wrn-28-11"], "Unknown model 'wrn-28-11'"),
    (["--strategy", "mirrored", "--cpu-devices", "2", "--batch-size", "3"],
     "cannot be split evenly over 2 replicas"),
    (["--dataset", "cifar10", "--data-dir", "NO_DATA", "--no-download"], "was not found in"),
    (["--model", "wrn-50-2-bottleneck"], "at least 32x32"),
    (["--lr-boundaries", "5,3"], "lr_boundaries must be increasing epoch numbers >= 2"),
    (["--lr-boundaries", "0"], "Received: lr_boundaries=0"),
])
def test_bad_input_gets_a_clear_error_before_the_run_folder_exists(tmp_path, args, message):
    args = [a.replace("NO_DATA", str(tmp_path / "tfds")) for a in args]
    result = invoke("train", "--run-dir", tmp_path / "run", "--epochs", "1", *args)
    assert result.exit_code == 1
    assert message in result.output and result.output.startswith("Error: "), result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "run")


def test_run_folder_of_another_model_is_refused(smoke_run):
    before = folder_state(smoke_run)
    result = invoke("train", "--smoke", "--model", "wrn-40-1", "--run-dir", smoke_run)
    assert result.exit_code == 1
    assert "belongs to another run: model='wrn-16-4'" in result.output
    assert folder_state(smoke_run) == before


def test_model_names_are_normalised_so_a_run_resumes_whatever_the_spelling(smoke_run):
    """`--model WRN-16-4` is the run of `wrn-16-4` (the registry's spelling)."""
    from keras_wrn.training.trainer import train

    result = train(TrainConfig.from_preset("digits", run_dir=smoke_run, smoke=True, xla=False,
                                           model=" WRN-16-4"), verbose=False)
    assert result.resumed_from_step == result.steps == 6
    assert TrainConfig.from_preset("digits", model="WRN-16-4").run_dir == os.path.join("runs", "digits-wrn-16-4")


@pytest.mark.parametrize("options", [
    ["--precision", "mixed_bfloat16", "--no-xla"],
    pytest.param(["--precision", "mixed_bfloat16", "--xla"], marks=pytest.mark.slow),
    ["--precision", "mixed_float16", "--no-xla"],
    ["--zca", "--dataset", "FOLDER", "--no-xla"],
])
def test_precision_xla_zca_and_folder_runs(tmp_path, options):
    import keras

    if "FOLDER" in options:
        write_folder(tmp_path / "images", per_class=8, size=8)
        options = [o.replace("FOLDER", str(tmp_path / "images")) for o in options]
    run_dir = str(tmp_path / "run")
    result = invoke("train", "--smoke", "--run-dir", run_dir, *options)
    assert result.exit_code == 0, result.output[-2000:]
    assert "Done: 6 steps" in result.stdout
    assert keras.config.dtype_policy().name == "float32"  # the process's policy is given back
    saved = json.load(open(os.path.join(run_dir, "config.json")))
    assert saved["config"]["precision"] == (options[1] if "--precision" in options else "float32")
    evaluated = invoke("evaluate", run_dir, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert 0.0 <= json.loads(evaluated.stdout)["test_error"] <= 1.0
    if "--zca" in options:
        assert os.path.exists(os.path.join(run_dir, "zca.npz"))


def test_evaluate_a_model_file_needs_its_dataset(smoke_run):
    model = os.path.join(smoke_run, "model.keras")
    missing = invoke("evaluate", model)
    assert missing.exit_code == 1 and "needs --dataset" in missing.output
    result = json.loads(invoke("evaluate", model, "--dataset", "digits", "--json").stdout)
    by_folder = json.loads(invoke("evaluate", smoke_run, "--json").stdout)
    assert result["test_error"] == by_folder["test_error"] and result["num_examples"] == 450
    wrong = invoke("evaluate", model, "--dataset", "cifar10")
    assert wrong.exit_code == 1 and "predicts" in wrong.output


def test_no_resume_refuses_a_used_run_folder(smoke_run):
    before = folder_state(smoke_run)
    result = invoke("train", "--smoke", "--no-resume", "--run-dir", smoke_run)
    assert result.exit_code == 1
    assert "already holds a run and resume is off" in result.output
    assert folder_state(smoke_run) == before


@pytest.mark.slow
def test_soak_twenty_random_kills_end_as_an_uninterrupted_run(tmp_path):
    """SIGKILL at 20 random moments (start-up, training, checkpointing,
    writing the epoch's files), each followed by the same command."""
    import random

    run_dir = str(tmp_path / "run")
    args = ["train", "--batch-size", "128", "--epochs", "3", "--lr-boundaries", "2,3", "--checkpoint-steps", "3",
            "--no-xla", "--run-dir", run_dir]
    steps_per_epoch = 1347 // 128
    rng = random.Random(13)
    seen = []
    for _ in range(20):
        process = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        try:
            process.wait(timeout=rng.uniform(2.0, 14.0))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode in (0, -signal.SIGKILL), process.stderr.read()[-2000:]
        lines = open(os.path.join(run_dir, "metrics.jsonl")).read().splitlines() \
            if os.path.exists(os.path.join(run_dir, "metrics.jsonl")) else []
        assert lines[:len(seen)] == seen  # nothing written is ever lost
        seen = lines
    finished = run_cli(*args)
    assert finished.returncode == 0, failure(finished.stderr)
    assert f"Done: {3 * steps_per_epoch} steps, final learning rate 0.004," in finished.stdout
    records = metrics(run_dir)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert [r["step"] for r in records] == [steps_per_epoch * e for e in (1, 2, 3)]
    assert not [name for name in os.listdir(run_dir) if name.startswith(".tmp-")]


@pytest.mark.slow
def test_a_lost_worker_is_one_line_and_the_same_command_resumes(tmp_path):
    """Two workers on 127.0.0.1 (--strategy multi-worker); worker 0, the
    chief, SIGKILLed once epoch 1 is written: worker 1 ends at once with one
    line naming worker 0, the finished epochs and the fix; both started
    again with the same command finish the run."""
    run_dir = tmp_path / "run"
    args = ["train", "--epochs", "4", "--batch-size", "448", "--lr-boundaries", "3", "--strategy", "multi-worker",
            "--run-dir", run_dir]

    def workers():
        addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
        return [{"TF_CONFIG": json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": i}})}
                for i in range(2)]

    [(code, _, err)], seconds = lose_a_peer(args, workers(), victim=0, run_dir=run_dir)
    assert code == 1 and seconds < 60, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("Error: worker 0 of 2 stopped answering (") and "Traceback" not in err
    assert f"{run_dir} holds every finished epoch (" in line
    assert "start every worker again with the same command" in line
    for code, out, err in run_peers(args, workers()):
        assert code == 0, err[-3000:]
        assert "Resuming" in out and "Done: 12 steps" in out
    assert sorted({r["epoch"] for r in metrics(run_dir)}) == [1, 2, 3, 4]
