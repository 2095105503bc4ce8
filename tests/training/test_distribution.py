"""The Keras fit trainer over several devices and hosts under JAX (Keras'
`DataParallel`): 2 CPU devices compute what 1 device computes, resume is
exact, two processes on 127.0.0.1 train one run that only host 0 writes, and
bad starts are one clear error before anything is written. The runs need
processes of their own (JAX's device count and hosts are set once per
process): the `slow` tier; the checks of the multi-host variables run here."""

import importlib.util
import json
import shutil
import signal
import socket
import subprocess
import time

import pytest

from keras_wrn.training import distribution
from keras_wrn.training.session import check_batch_split
from tests.helpers import CLI, ENV, failure, kill_when, lose_a_peer, metrics, run_peers

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
JAX = {**ENV, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
# Float32 sums in another order (the gradients' all-reduce, batch norm's
# statistics over two shards), through 6 SGD steps: measured 4e-6 to 9e-6
# relative on a Zen 4, and 1.5e-4 on the first epoch's loss on an Intel Xeon
# (AMX) with the batches in ShuffledBatches' own order. Per-device batch
# statistics, or a batch split wrongly, move the losses by 1e-2 and more.
SAME_COMPUTATION = 3e-4


def jax_train(*args, env=None, timeout=900):
    return subprocess.run([*CLI, "train", *map(str, args)], capture_output=True, text=True,
                          env={**JAX, **(env or {})}, timeout=timeout)


def multi_host(port, processes, process_id, addresses=None):
    return {distribution.JOB_ADDRESSES: addresses or f"127.0.0.1:{port}",
            distribution.NUM_PROCESSES: str(processes), distribution.PROCESS_ID: str(process_id)}


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_multi_host_variables_are_read_and_checked(monkeypatch):
    for name, value in multi_host(1234, 2, 1, "10.0.0.1:1234,10.0.0.2:1234").items():
        monkeypatch.setenv(name, value)
    assert distribution.multi_host_requested()
    assert distribution.read_multi_host() == ("10.0.0.1:1234", 2, 1)
    monkeypatch.setenv(distribution.NUM_PROCESSES, "3")
    with pytest.raises(ValueError, match="names 2 hosts but KERAS_DISTRIBUTION_NUM_PROCESSES=3"):
        distribution.read_multi_host()
    monkeypatch.setenv(distribution.JOB_ADDRESSES, "10.0.0.1:1234")
    monkeypatch.setenv(distribution.PROCESS_ID, "3")
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_PROCESS_ID must be 0 to 2"):
        distribution.read_multi_host()
    monkeypatch.setenv(distribution.PROCESS_ID, "one")
    with pytest.raises(ValueError, match="must be an integer"):
        distribution.read_multi_host()
    monkeypatch.setenv(distribution.PROCESS_ID, "0")
    monkeypatch.setenv(distribution.JOB_ADDRESSES, "10.0.0.1")
    with pytest.raises(ValueError, match="host:port"):
        distribution.read_multi_host()


def test_each_process_feeds_its_share_of_a_batch_the_devices_split_evenly():
    two_hosts = distribution.Placement(devices=("cpu:0", "cpu:1", "cpu:2", "cpu:3"), process_id=1, processes=2)
    assert not two_hosts.chief and two_hosts.replicas == 4 and two_hosts.share(64) == (32, 64)
    assert distribution.Placement(devices=("cpu:0",)).share(64) == (0, 64)
    check_batch_split(64, two_hosts.replicas, "devices")
    with pytest.raises(ValueError, match="cannot be split evenly over 4 devices; use a multiple of 4"):
        check_batch_split(66, two_hosts.replicas, "devices")


def test_a_lost_host_is_told_from_other_errors():
    """What JAX raised on host 0 when host 1 was SIGKILLed (the slow test
    below does it for real), against other errors and a run of one host."""
    from keras_wrn import data
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.fit import FitTrainer

    trainer = FitTrainer(TrainConfig(), data.get_dataset_spec("digits"))
    gone = ValueError("UNKNOWN: Gloo AllGather failed: [external/gloo/gloo/transport/tcp/pair.cc:547] Connection "
                      "closed by peer [127.0.0.1]:18099\nINTERNAL: Barrier failed because: task is set to ERROR")
    trainer.placement = distribution.Placement(devices=("cpu:0", "cpu:1"), process_id=0, processes=2)
    assert trainer.lost_peer(gone) == "host 1 of 2"
    assert trainer.lost_peer(ValueError("Incompatible shapes: [448] vs [224]")) is None
    trainer.placement = distribution.Placement(devices=("cpu:0", "cpu:1", "cpu:2"), process_id=1, processes=3)
    assert trainer.lost_peer(gone) == "a host of 3"
    trainer.placement = distribution.Placement(devices=("cpu:0",))
    assert trainer.lost_peer(gone) is None


def test_a_backend_that_does_not_scale_names_the_routes_that_do(tmp_path):
    """Under PyTorch (here the same branch, in this process under TensorFlow)
    the fit trainer trains on one device only."""
    from keras_wrn import data
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.fit import FitTrainer

    config = TrainConfig.from_preset("digits", run_dir=str(tmp_path / "run"), strategy="mirrored")
    with pytest.raises(ValueError, match="KERAS_BACKEND=jax .*KERAS_BACKEND=tensorflow"):
        FitTrainer(config, data.get_dataset_spec("digits"), verbose=False).prepare()
    assert not (tmp_path / "run").exists()


def losses(run_dir):
    return [(r["step"], r["train_loss"], r["test_loss"]) for r in metrics(run_dir)]


@needs_jax
@pytest.mark.slow
def test_two_devices_compute_what_one_device_computes(tmp_path):
    args = ["--epochs", "2", "--batch-size", "448", "--lr-boundaries", "2"]
    one = jax_train(*args, "--strategy", "one-device", "--run-dir", tmp_path / "one")
    two = jax_train(*args, "--cpu-devices", "2", "--run-dir", tmp_path / "two")
    assert one.returncode == 0 and two.returncode == 0, failure(one.stderr) + failure(two.stderr)
    assert "2 devices, batch 448" in two.stdout
    saved = json.loads((tmp_path / "two" / "config.json").read_text())
    assert saved["devices"] == ["cpu:0", "cpu:1"] and saved["replicas"] == 2 and saved["processes"] == 1
    for (step_one, *one_losses), (step_two, *two_losses) in zip(losses(tmp_path / "one"), losses(tmp_path / "two")):
        assert step_one == step_two
        assert two_losses == pytest.approx(one_losses, rel=SAME_COMPUTATION)
    assert [s for s, *_ in losses(tmp_path / "two")] == [3, 6]


@needs_jax
@pytest.mark.slow
def test_a_run_on_two_devices_killed_midway_resumes_exactly(tmp_path):
    run_dir = tmp_path / "run"
    args = [*CLI, "train", "--cpu-devices", "2", "--epochs", "3", "--lr-boundaries", "2,3", "--run-dir", str(run_dir)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=JAX)
    # Killed in epoch 2.
    kill_when(process, lambda: (run_dir / "metrics.jsonl").exists() and len(metrics(run_dir)) >= 1, timeout=600)
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-2000:]
    finished = subprocess.run(args, capture_output=True, text=True, env=JAX, timeout=900)
    assert finished.returncode == 0, failure(finished.stderr)
    steps_per_epoch = 1347 // 64
    assert "Resuming" in finished.stdout
    assert f"Done: {3 * steps_per_epoch} steps, final learning rate 0.004," in finished.stdout
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2, 3]


def read_only_view(path):
    """A command prefix that runs a process in a mount namespace where `path`
    is read-only (a real fault for any write there), or None where mount
    namespaces are not allowed."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode:
        return None
    return ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{path}" "{path}" && exec "$0" "$@"']


@needs_jax
@pytest.mark.slow
def test_two_hosts_train_one_run_that_only_host_0_writes(tmp_path):
    """Two processes on 127.0.0.1, one CPU device each, through the
    multi-host start; host 1 sees the run folder read-only, so any write of
    its would fail the run."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    read_only = read_only_view(run_dir)
    if read_only is None:
        pytest.skip("mount namespaces are not allowed here (unshare -m)")
    port = free_port()
    args = ["train", "--epochs", "2", "--batch-size", "448", "--lr-boundaries", "2", "--run-dir", run_dir]
    hosts = [subprocess.Popen([*(read_only if process_id else []), *CLI, *map(str, args)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**JAX, **multi_host(port, 2, process_id)})
             for process_id in (0, 1)]
    outputs = [host.communicate(timeout=900) for host in hosts]
    for host, (out, err) in zip(hosts, outputs):
        assert host.returncode == 0, err[-3000:]
        assert "Keras fit on jax, 2 devices on 2 hosts, batch 448" in out and "Done: 6 steps" in out
    epochs = [[line.split(", ")[0] for line in out.splitlines() if line.startswith("epoch")] for out, _ in outputs]
    assert len(epochs[0]) == 2 and epochs[0] == epochs[1]  # one model, trained in lockstep
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["processes"] == 2 and saved["replicas"] == 2
    assert [r["epoch"] for r in metrics(run_dir)] == [1, 2]


@needs_jax
@pytest.mark.slow
def test_bad_starts_are_one_clear_error_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    result = jax_train("--cpu-devices", "2", "--batch-size", "63", "--run-dir", run_dir, timeout=300)
    assert result.returncode == 1 and "cannot be split evenly over 2 replicas" in result.stderr
    result = jax_train("--cpu-devices", "2", "--no-xla", "--run-dir", run_dir, timeout=300)
    assert result.returncode == 1 and "runs compiled by XLA" in result.stderr
    assert "--strategy one-device" in result.stderr
    # A coordinator that does not answer: one line within the time allowed, not JAX's abort.
    started = time.monotonic()
    result = jax_train("--smoke", "--run-dir", run_dir, env={**multi_host(free_port(), 2, 1),
                                                              distribution.JOIN_SECONDS_ENV: "3"}, timeout=300)
    assert time.monotonic() - started < 60
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "did not all join at 127.0.0.1:" in result.stderr and "Nothing was written" in result.stderr
    # Host counts that disagree: refused at once, or both hosts stop waiting with the same line.
    result = jax_train("--smoke", "--run-dir", run_dir,
                       env=multi_host(0, 2, 0, addresses="127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"), timeout=300)
    assert result.returncode == 1 and "names 3 hosts but KERAS_DISTRIBUTION_NUM_PROCESSES=2" in result.stderr
    port = free_port()
    hosts = [subprocess.Popen([*CLI, "train", "--smoke", "--run-dir", str(run_dir)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**JAX, **multi_host(port, 3, process_id), distribution.JOIN_SECONDS_ENV: "5"})
             for process_id in (0, 1)]
    for host in hosts:
        _, err = host.communicate(timeout=300)
        assert host.returncode == 1 and "the 3 hosts of this run did not all join" in err
    assert not run_dir.exists()


@pytest.mark.slow
def test_pytorch_names_the_routes_that_scale(tmp_path):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    result = subprocess.run([*CLI, "train", "--smoke", "--strategy", "mirrored", "--run-dir", str(tmp_path / "run")],
                            capture_output=True, text=True, env={**ENV, "KERAS_BACKEND": "torch"}, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Under torch, keras-wrn trains on one device" in result.stderr and "KERAS_BACKEND=jax" in result.stderr
    assert not (tmp_path / "run").exists()


@needs_jax
@pytest.mark.slow
def test_a_lost_host_is_one_line_and_the_same_command_resumes(tmp_path):
    """Two hosts on 127.0.0.1; host 1 SIGKILLed once epoch 1 is written:
    host 0 ends at once with one line naming host 1, the finished epochs
    and the fix; both started again with the same command finish the run."""
    run_dir = tmp_path / "run"
    port = free_port()
    args = ["train", "--epochs", "4", "--batch-size", "448", "--lr-boundaries", "3", "--run-dir", run_dir]
    hosts = [{**JAX, **multi_host(port, 2, process_id)} for process_id in (0, 1)]
    [(code, _, err)], seconds = lose_a_peer(args, hosts, victim=1, run_dir=run_dir)
    assert code == 1 and seconds < 60, err[-3000:]
    (line,) = err.strip().splitlines()
    assert line.startswith("Error: host 1 of 2 stopped answering (") and "Traceback" not in err
    assert f"{run_dir} holds every finished epoch (" in line and "start every host again with the same command" in line
    port = free_port()
    again = run_peers(args, [{**JAX, **multi_host(port, 2, process_id)} for process_id in (0, 1)])
    for code, out, err in again:
        assert code == 0, err[-3000:]
        assert "Resuming" in out and "Done: 12 steps" in out
    assert sorted({r["epoch"] for r in metrics(run_dir)}) == [1, 2, 3, 4]
