"""Choosing a tf.distribute strategy by name."""

import json
import os
import re

from keras_wrn.errors import InvalidArgumentError


def split_cpu(devices):
    """Splits the host CPU into `devices` logical devices, so "mirrored" can
    run several replicas on a machine with no GPU (tests, debugging). Must
    run before TensorFlow initialises its devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current and len(current) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices
        )
    except RuntimeError as error:
        raise InvalidArgumentError(
            f"Cannot split the CPU into {devices} devices once TensorFlow has started; "
            f"pass cpu_devices before any other TensorFlow work."
        ) from error


def make_strategy(name="auto", tpu=None):
    """Returns a `tf.distribute.Strategy`.

    - "one-device": the first GPU, else the CPU.
    - "mirrored": all local GPUs (or the logical CPU devices when there is
      no GPU), synchronous all-reduce.
    - "multi-worker": `MultiWorkerMirroredStrategy`; the cluster comes from
      the `TF_CONFIG` environment variable, which every worker must set.
    - "tpu": `TPUStrategy` on the TPU named by `tpu` (or found by the
      cluster resolver).
    - "auto": multi-worker when `TF_CONFIG` names several workers, TPU when
      `tpu` is given, mirrored with several GPUs, else one-device.
    """
    import tensorflow as tf

    if name == "auto":
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
        if workers > 1:
            name = "multi-worker"
        elif tpu:
            name = "tpu"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "one-device"
    if name == "one-device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise InvalidArgumentError(
                "--strategy multi-worker needs the TF_CONFIG environment variable on every "
                "worker, e.g. TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", "
                "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}'"
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise InvalidArgumentError(f"Unknown strategy {name!r}. Received: strategy={name!r}")


def is_chief(strategy):
    """Whether this process writes the run folder (worker 0 / the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def lost_worker(strategy, error):
    """Which worker stopped answering ("worker 1 of 2", or "a worker of N"
    when the error names none of their addresses), when `error` is the
    collective or connection failure tf.distribute raises for a worker that
    is gone; None for any other error or a run of one process."""
    import tensorflow as tf

    resolver = getattr(strategy, "cluster_resolver", None)
    cluster = resolver.cluster_spec().as_dict() if resolver is not None and resolver.task_type else {}
    tasks = [(kind, index, address) for kind in ("chief", "worker") for index, address in
             enumerate(cluster.get(kind, []))]
    if len(tasks) < 2 or not isinstance(error, (tf.errors.UnavailableError, tf.errors.CancelledError,
                                                tf.errors.DeadlineExceededError, tf.errors.AbortedError)):
        return None
    message = str(error)
    named = {(kind, int(index)) for kind, index in re.findall(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)", message)}
    for kind, index, address in tasks:
        if (kind, index) == (resolver.task_type, resolver.task_id):
            continue
        if (kind, index) in named or f":{address.rsplit(':', 1)[-1]}" in message:
            return f"{kind} {index} of {len(tasks)}"
    return f"a worker of {len(tasks)}"


def xla_blocker(strategy):
    """Why XLA cannot compile `strategy`'s step, or None when it can.

    TensorFlow's XLA has no collectives on CPU devices and cannot reach the
    variables of other logical CPU devices, so several replicas on CPUs
    (mirrored over a split CPU, multi-worker on CPU hosts) run without it.
    One device, several GPUs and TPUs compile."""
    replicas = strategy.num_replicas_in_sync
    devices = strategy.extended.worker_devices
    if replicas > 1 and any("CPU" in device.upper() for device in devices):
        return (f"TensorFlow's XLA cannot compile a step of {replicas} replicas on CPU devices "
                f"(no XLA collectives on CPU)")
    return None


def on_cpu(strategy):
    """Whether `strategy`'s replicas run on CPU devices."""
    return all("CPU" in device.upper() for device in strategy.extended.worker_devices)


def resolve_xla(requested, strategy):
    """Whether the step compiles with XLA: `requested` True/False, or None
    for the default, on wherever XLA can run (see `xla_blocker`). Raises
    ValueError, naming the fix, when XLA is asked for where it cannot run."""
    blocker = xla_blocker(strategy)
    if requested is None:
        return blocker is None
    if requested and blocker:
        raise InvalidArgumentError(f"--xla: {blocker}. Train without it (--no-xla), or on one device or GPUs.")
    return bool(requested)
