"""Where the Keras fit trainer computes under JAX: one device, every local
device, or every device of several hosts, data parallel through Keras' own
distribution API (`keras.distribution.DataParallel`).

`--strategy` keeps its names (the tf.distribute trainer's) with the same
meaning:

    auto          every device this run can see: all hosts' under a multi-host start, else this host's
    one-device    the first device only
    mirrored      every device of this host
    multi-worker  every device of every host; needs the multi-host start below

A multi-host start is the one `keras.distribution.initialize` reads: every
host runs the same command with

    KERAS_DISTRIBUTION_JOB_ADDRESSES  the coordinator's host:port (or every host's, the coordinator first)
    KERAS_DISTRIBUTION_NUM_PROCESSES  the number of hosts (processes)
    KERAS_DISTRIBUTION_PROCESS_ID     this host's number, 0 for the coordinator

Process 0 writes the run folder; the others read it and never write. The
processes join through JAX's coordination service (`jax.distributed`, which
Keras' initialize calls) within `KERAS_WRN_JOIN_SECONDS` (default 300);
keras-wrn calls it with that time limit, which Keras' wrapper does not take,
and says what to check when they do not all join, instead of JAX's abort.

The global batch is split evenly over the devices (each process feeds its
share of every batch); batch normalisation, computed by XLA over the whole
sharded batch, uses the statistics of the global batch, so a run on 2
devices computes what the same run on 1 device computes.
"""

import dataclasses
import os
import sys
import threading

from keras_wrn import framework_logs
from keras_wrn.errors import InvalidArgumentError, KerasWRNError

JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
JOIN_SECONDS_ENV = "KERAS_WRN_JOIN_SECONDS"
JOIN_SECONDS = 300.0


class DistributionError(KerasWRNError):
    """The devices or hosts of a run cannot be set up as asked."""


@dataclasses.dataclass(frozen=True)
class Placement:
    """The devices a run trains on and this process's part in it."""

    devices: tuple  # every device of the run (all processes)
    process_id: int = 0
    processes: int = 1

    @property
    def chief(self):
        return self.process_id == 0

    @property
    def replicas(self):
        return len(self.devices)

    def share(self, global_batch_size):
        """`(start, stop)`: which rows of each global batch this process feeds."""
        per_process = global_batch_size // self.processes
        return self.process_id * per_process, (self.process_id + 1) * per_process

    def distribution(self):
        """Keras' `DataParallel` over the devices, or None for one device.
        Every process feeds its own share of each batch (no auto-sharding:
        the batches come from memory, not tf.data)."""
        if self.replicas == 1:
            return None
        import keras

        return keras.distribution.DataParallel(devices=list(self.devices), auto_shard_dataset=False)


def multi_host_requested():
    return bool(os.environ.get(JOB_ADDRESSES) or os.environ.get(NUM_PROCESSES))


def _integer(name, value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be an integer. Received: {name}={value!r}") from None


def read_multi_host():
    """`(coordinator, processes, process_id)` from Keras' environment
    variables, checked; raises `InvalidArgumentError` naming the variable."""
    addresses = [a.strip() for a in os.environ.get(JOB_ADDRESSES, "").split(",") if a.strip()]
    if not addresses:
        raise InvalidArgumentError(
            f"A multi-host run needs {JOB_ADDRESSES} (the coordinator's host:port) on every host, with "
            f"{NUM_PROCESSES} and {PROCESS_ID}.")
    processes = _integer(NUM_PROCESSES, os.environ.get(NUM_PROCESSES, len(addresses) if len(addresses) > 1 else None))
    process_id = _integer(PROCESS_ID, os.environ.get(PROCESS_ID))
    if len(addresses) > 1 and len(addresses) != processes:
        raise InvalidArgumentError(
            f"{JOB_ADDRESSES} names {len(addresses)} hosts but {NUM_PROCESSES}={processes}: they must agree. "
            f"Received: {JOB_ADDRESSES}={os.environ.get(JOB_ADDRESSES)!r}")
    if processes < 1 or not 0 <= process_id < processes:
        raise InvalidArgumentError(
            f"{PROCESS_ID} must be 0 to {processes - 1} for {NUM_PROCESSES}={processes} (each host its own, 0 the "
            f"coordinator). Received: {PROCESS_ID}={process_id}")
    if ":" not in addresses[0]:
        raise InvalidArgumentError(
            f"{JOB_ADDRESSES} must give the coordinator as host:port. Received: {addresses[0]!r}")
    return addresses[0], processes, process_id


def join_seconds():
    return float(os.environ.get(JOIN_SECONDS_ENV) or JOIN_SECONDS)


def join_hosts(coordinator, processes, process_id, log=print):
    """Joins the multi-host run through JAX's coordination service within
    `join_seconds()`. When the hosts do not all join in time, prints one
    error line saying what to check and ends the process (JAX would abort
    it a moment later with its own fatal log); nothing has been written."""
    import jax

    seconds = join_seconds()
    log(f"Joining a run of {processes} hosts at {coordinator} as host {process_id} (waiting up to {seconds:g} s).")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across CPU hosts too
    joined = threading.Event()

    def give_up():
        if not joined.wait(seconds):
            sys.stderr.write(
                f"Error: the {processes} hosts of this run did not all join at {coordinator} within {seconds:g} s: "
                f"check that {coordinator} is host 0's address and reachable, that every host runs the same command "
                f"with {NUM_PROCESSES}={processes} and its own {PROCESS_ID}, and that {processes} were started "
                f"({JOIN_SECONDS_ENV} sets the wait). Nothing was written.\n")
            sys.stderr.flush()
            framework_logs.flush()  # the line must reach the terminal before the process ends
            os._exit(1)

    threading.Thread(target=give_up, daemon=True, name="keras-wrn-join").start()
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=processes, process_id=process_id,
                               initialization_timeout=int(seconds) + 30)
    joined.set()


def place(strategy, cpu_devices=None, tpu=None, log=print):
    """The `Placement` of a run under JAX for `--strategy`, `--cpu-devices`
    (split this host's CPU into N devices, for testing) and `--tpu` (refused:
    under JAX, TPUs are devices as any other). Joins a multi-host run first
    when one is requested. Call before anything else uses JAX's devices."""
    import jax

    if tpu:
        raise InvalidArgumentError(
            f"--tpu {tpu} names a TPU for tf.distribute; under JAX a TPU host's chips are devices as any other: "
            f"leave out --tpu (every device is used), or train with KERAS_BACKEND=tensorflow.")
    multi_host = multi_host_requested()
    if strategy == "multi-worker" and not multi_host:
        raise InvalidArgumentError(
            f"--strategy multi-worker under JAX needs a multi-host start: {JOB_ADDRESSES}, {NUM_PROCESSES} and "
            f"{PROCESS_ID} on every host (see keras_wrn.training.distribution).")
    if multi_host and strategy not in ("auto", "multi-worker"):
        raise InvalidArgumentError(
            f"--strategy {strategy} trains on this host alone, but {JOB_ADDRESSES} asks for a multi-host run: "
            f"use --strategy auto or multi-worker, or unset the KERAS_DISTRIBUTION_* variables.")
    if cpu_devices:
        jax.config.update("jax_num_cpu_devices", int(cpu_devices))
    if multi_host:
        join_hosts(*read_multi_host(), log=log)
    if strategy == "one-device":
        devices = jax.local_devices()[:1]
    elif strategy == "mirrored":
        devices = jax.local_devices()
    else:
        devices = jax.devices()
    if cpu_devices and len(jax.local_devices()) != int(cpu_devices):
        raise DistributionError(
            f"--cpu-devices {cpu_devices} could not split the CPU: JAX had started with "
            f"{len(jax.local_devices())} device(s). Pass it before anything else uses JAX.")
    return Placement(tuple(devices), jax.process_index(), jax.process_count())


def devices(backend):
    """The accelerators (or CPU) the backend computes on, for config.json."""
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices()]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ["cpu"]
