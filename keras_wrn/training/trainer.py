"""The training loop: a custom `strategy.run` loop under any tf.distribute
strategy (Keras 3 `fit` fails under MultiWorkerMirroredStrategy on TF 2.21),
with exact resume.

A run folder holds:

    config.json          the resolved TrainConfig, package and TF versions
    checkpoints/         tf.train checkpoints (model, optimizer, RNG state)
    last.weights.h5      weights after the last finished epoch
    best.weights.h5      weights of the epoch with the lowest test error
    metrics.jsonl        one JSON line per epoch
    curves.png           train loss and test error against epochs (Figure 2)
    tensorboard/         scalars for TensorBoard
    model.keras          the final model (logits), written when the run ends

Resume: the optimizer's step count is the single source of truth. The data
order of epoch e depends only on (seed, e), so a run restarted from a
checkpoint taken at step s skips the s mod steps_per_epoch batches it had
already trained on, and ends with the optimizer steps and learning rate of an
uninterrupted run.
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import time

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.training import logs, run_folder
from keras_wrn.training.config import TrainConfig, package_versions
from keras_wrn.training.hardware import cpu
from keras_wrn.training.steps import build_training_objects, make_train_step, replica_function

SMOKE_STEPS = 3
SMOKE_EPOCHS = 2
SMOKE_BATCH_PER_REPLICA = 2


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    epochs: int
    steps: int
    learning_rate: float
    test_error: float
    best_test_error: float
    resumed_from_step: int


def environment():
    """Package versions, the Keras backend and the CPU, for config.json."""
    import keras

    return {**package_versions(), "backend": keras.backend.backend(), "cpu": cpu().to_dict()}


def check_model_and_data(config, spec):
    """Refuses a model the dataset's images are too small for."""
    from keras_wrn.models import registry

    if registry.get_model_spec(config.model).family == "imagenet" and spec.image_size < 32:
        raise InvalidArgumentError(
            f"{config.model} needs images of at least 32x32; {spec.name} has "
            f"{spec.image_size}x{spec.image_size}. Use a CIFAR-style model such as wrn-16-4.")


def _save_checkpoint(manager, step, run_dir):
    """`manager.save` whose failure (a full disk) removes its half-written
    folder and says what is intact, instead of a TensorFlow traceback."""
    import tensorflow as tf

    try:
        manager.save(checkpoint_number=step)
    except tf.errors.OpError as error:
        run_folder.remove_debris(run_dir)
        older = run_folder.checkpoint_numbers(run_dir)
        reason = error.message.rsplit(";", 1)[-1].strip() or type(error).__name__
        raise run_folder.RunFolderWriteError(
            f"Could not write checkpoint {step} in {manager.directory}: {reason}. The previous checkpoint "
            f"({f'ckpt-{older[0]}' if older else 'none yet'}) and the run's other files are intact; free some "
            f"space, then run the same command again: it resumes.") from None


def _read(variable):
    import numpy as np

    value = getattr(variable, "value", variable)
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


class _Progress:
    """A per-epoch progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled):
        self.enabled = enabled and sys.stdout.isatty()

    @contextlib.contextmanager
    def epoch(self, label, total, completed):
        if not self.enabled:
            yield lambda **_: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), TextColumn("{task.fields[info]}"), transient=True) as bar:
            task = bar.add_task(label, total=total, completed=completed, info="")
            yield lambda info="": bar.update(task, advance=1, info=info)


def load_or_fit_zca(config, training_images, write=True):
    """The run's GCN + ZCA whitening: read from `zca.npz` in the run folder,
    or fitted on `training_images()` (the whole training split, uint8
    `(N, H, W, C)`; called only then) and written there."""
    import numpy as np

    from keras_wrn.data import fit_zca

    path = run_folder.path(config.run_dir, run_folder.ZCA)
    if os.path.exists(path):
        with np.load(path) as stored:
            return stored["mean"], stored["matrix"]
    mean, matrix = fit_zca(training_images())
    if write:
        with run_folder.atomic_path(path) as tmp:
            np.savez(tmp, mean=mean, matrix=matrix)
    return mean, matrix


@dataclasses.dataclass
class _Run:
    """What the phases of one tf.distribute run share (Orbit's
    StandardTrainer shape: `_train_epoch`, `_evaluate`, `_end_epoch`)."""

    config: TrainConfig
    spec: object
    strategy: object
    model: object
    preprocess: object
    optimizer: object
    schedule: object
    manager: object
    train_split: object
    test_split: object
    batch_size: int
    steps_per_epoch: int
    epochs: int
    chief: bool
    best_error: object
    epoch_record: object
    log: object
    progress: object
    step: int = 0
    last_save_time: float = 0.0
    records: list = dataclasses.field(default_factory=list)
    logged_epochs: set = dataclasses.field(default_factory=set)
    scalars: object = None
    train_step: object = None
    eval_step: object = None

    def path(self, name):
        return run_folder.path(self.config.run_dir, name)


def _compile_steps(run):
    """The training step (`steps.make_train_step`) and the test step, each
    replica's work XLA-compiled when the run uses XLA."""
    import keras
    import tensorflow as tf

    top5 = run.spec.num_classes >= 100
    model, preprocess, strategy = run.model, run.preprocess, run.strategy

    def eval_replica(images, labels, weights):
        logits = tf.cast(model(preprocess(images, training=False), training=False), tf.float32)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        wrong1 = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != labels, tf.float32)
        wrong5 = 1.0 - tf.cast(tf.math.in_top_k(labels, logits, 5), tf.float32) if top5 else wrong1
        return [tf.reduce_sum(v * weights) for v in (per_example, wrong1, wrong5, tf.ones_like(weights))]

    eval_replica = replica_function(eval_replica, run.config.xla)

    @tf.function
    def eval_step(images, labels, weights):
        values = strategy.run(eval_replica, args=(images, labels, weights))
        return [strategy.reduce("SUM", v, axis=None) for v in values]

    run.eval_step = eval_step
    run.train_step = make_train_step(strategy, model, preprocess, run.optimizer, global_batch_size=run.batch_size,
                                     precision=run.config.precision, xla=run.config.xla)


def _recover_closed_epoch(run):
    """A run killed after an epoch-end checkpoint but before that epoch's
    files: the checkpoint carries the epoch's record, so they are written now."""
    closed = json.loads(run.epoch_record.numpy().decode() or "null")
    if not (run.chief and closed and closed["step"] == run.step) or closed["epoch"] in {
            r.get("epoch") for r in run.records}:
        return
    run.records.append(closed)
    run_folder.save_weights(run.model, run.path(run_folder.LAST_WEIGHTS))
    if closed["test_error"] <= float(run.best_error.numpy()):
        run_folder.save_weights(run.model, run.path(run_folder.BEST_WEIGHTS))
    logs.write_metrics(run.path(run_folder.METRICS), run.records)


def _train_epoch(run, epoch):
    """Phase 1: the epoch's steps from where the run stands (a resumed run
    skips what it did), checkpointing mid-epoch when due. Returns its sums."""
    from keras_wrn import data

    config, spe = run.config, run.steps_per_epoch
    skip = run.step - epoch * spe
    dataset = run.strategy.distribute_datasets_from_function(
        lambda ctx: data.batches(run.train_split, run.batch_size, epoch=epoch, seed=config.seed, skip_steps=skip,
                                 max_steps=spe, input_context=ctx, deterministic=config.deterministic))
    started, loss_sum, wrong_sum, seen = time.monotonic(), 0.0, 0.0, 0
    with run.progress.epoch(f"epoch {epoch + 1}/{run.epochs}", spe, skip) as advance:
        for images, labels in dataset:
            loss, wrong = run.train_step(images, labels)
            run.step += 1
            seen += 1
            loss_sum += float(loss)
            wrong_sum += float(wrong)
            advance(info=f"loss {loss_sum / seen:.4f}")
            due_steps = config.checkpoint_steps and run.step % config.checkpoint_steps == 0
            due_time = time.monotonic() - run.last_save_time >= 60 * config.checkpoint_minutes
            if (due_steps or due_time) and run.step % spe:
                _save_checkpoint(run.manager, run.step, config.run_dir)
                run.last_save_time = time.monotonic()
    return {"skip": skip, "seen": seen, "loss_sum": loss_sum, "wrong_sum": wrong_sum,
            "seconds": time.monotonic() - started}


def _evaluate(run):
    """Phase 2: `(loss, top-1 error, top-5 error)` on the test split (the
    first steps' worth of it in smoke runs), exact over every example."""
    from keras_wrn import data

    totals = [0.0] * 4
    max_examples = SMOKE_STEPS * run.batch_size if run.config.smoke else None
    dataset = run.strategy.distribute_datasets_from_function(
        lambda ctx: data.evaluation_batches(run.test_split, run.batch_size, input_context=ctx,
                                            max_examples=max_examples))
    for images, labels, weights in dataset:
        totals = [t + float(v) for t, v in zip(totals, run.eval_step(images, labels, weights))]
    loss, wrong1, wrong5, count = totals
    return loss / count, wrong1 / count, wrong5 / count


def _end_epoch(run, epoch, stats, tested):
    """Phase 3: the epoch's record; the epoch-end checkpoint, which carries
    it, first; then the run folder's files (weights, metrics, curves,
    TensorBoard). Returns the record."""
    test_loss, test_error, test_top5 = tested
    seen, seconds = stats["seen"], stats["seconds"]
    record = {
        "epoch": epoch + 1, "step": run.step,
        "learning_rate": float(run.schedule(run.step - 1)) if callable(run.schedule) else run.schedule,
        "train_loss": stats["loss_sum"] / max(seen, 1),
        "train_error": stats["wrong_sum"] / max(seen * run.batch_size, 1),
        "test_loss": test_loss, "test_error": test_error,
        **({"test_top5_error": test_top5} if run.spec.num_classes >= 100 else {}),
        "epoch_seconds": round(seconds, 3),
        "images_per_second": round(seen * run.batch_size / max(seconds, 1e-9), 1),
        "resumed_mid_epoch": bool(stats["skip"]),
        **({"redone": True} if epoch + 1 in run.logged_epochs else {}),
    }
    run.records.append(record)
    improved = test_error < float(run.best_error.numpy())
    if improved:
        run.best_error.assign(test_error)
    run.epoch_record.assign(json.dumps(record))
    _save_checkpoint(run.manager, run.step, run.config.run_dir)  # first: the files below are remade from it
    run.last_save_time = time.monotonic()
    if run.chief:
        run_folder.save_weights(run.model, run.path(run_folder.LAST_WEIGHTS))
        if improved:
            run_folder.save_weights(run.model, run.path(run_folder.BEST_WEIGHTS))
        logs.write_metrics(run.path(run_folder.METRICS), run.records)
        logs.plot_curves(logs.latest_per_epoch(run.records), run.path(run_folder.CURVES),
                         f"{run.config.model} on {run.spec.name}")
        run.scalars.write(record)
    run.log(f"epoch {epoch + 1}/{run.epochs}: train loss {record['train_loss']:.4f}, "
            f"test error {100 * test_error:.2f}%, {record['images_per_second']:.0f} img/s")
    return record


def bfloat16_hint(config, on_cpu, processor):
    """The line a float32 run without XLA on a CPU with bfloat16
    instructions (`hardware.CPU.native_bfloat16`) prints, or None: oneDNN's
    bf16 kernels trained 1.7x faster there (XLA:CPU's gain little)."""
    if config.precision == "float32" and not (config.smoke or config.xla) and on_cpu \
            and processor.native_bfloat16:
        return ("This CPU computes bfloat16 natively: --precision mixed_bfloat16 trained 1.7x faster than "
                "float32 on an AMD Zen 4, to the same accuracy (README, Benchmarks).")
    return None


def train(config, *, verbose=True):
    """Runs (or resumes) the training run described by `config`.

    Returns a `TrainResult`. Raises ValueError subclasses for bad input
    (unknown dataset or model, a batch size the replicas cannot share, a
    run folder of another run) and `DataNotFoundError` for missing data,
    before anything is written.
    """
    import keras

    if keras.backend.backend() != "tensorflow":  # JAX, PyTorch: the Keras fit route
        from keras_wrn.training.fit_trainer import train_with_fit

        return train_with_fit(config, verbose=verbose)
    import numpy as np
    import tensorflow as tf

    from keras_wrn import data
    from keras_wrn.training.strategies import is_chief, make_strategy, on_cpu, resolve_xla, split_cpu
    from keras_wrn.training.xla_choice import choose_xla

    config.validate()
    log = print if verbose else (lambda *a, **k: None)
    warn = functools.partial(print, file=sys.stderr)  # shown even when not verbose
    lock = scalars = None
    # Validate names before touching the strategy, the data or the folder.
    spec = data.get_dataset_spec(config.dataset)
    check_model_and_data(config, spec)
    if spec.tfds_name is None and spec.name != "digits":
        data.check_image_folder(spec.name)  # a damaged image is named before anything is written
    if config.cpu_devices:
        split_cpu(config.cpu_devices)
    strategy = make_strategy(config.strategy, config.tpu)
    replicas = strategy.num_replicas_in_sync
    xla = resolve_xla(config.xla, strategy)
    batch_size = SMOKE_BATCH_PER_REPLICA * replicas if config.smoke else config.batch_size
    if batch_size % replicas:
        raise InvalidArgumentError(
            f"The global batch size {batch_size} cannot be split evenly over {replicas} "
            f"replicas; use a multiple of {replicas}."
        )
    keras.config.set_dtype_policy(config.precision)
    try:
        train_split = data.load_split(spec, "train", data_dir=config.data_dir, training=True)
        test_split = data.load_split(spec, "test", data_dir=config.data_dir)
        steps_per_epoch = (
            SMOKE_STEPS if config.smoke else data.steps_per_epoch(train_split, batch_size)
        )
        epochs = SMOKE_EPOCHS if config.smoke else config.epochs
        total_steps = steps_per_epoch * epochs

        chief = is_chief(strategy)
        run_dir = config.run_dir
        if chief:
            # Before anything in the folder is read or written: one process at a time.
            lock = run_folder.take(run_dir, log)
        config_path = run_folder.path(run_dir, run_folder.CONFIG)
        run_folder.check_same_run(config, warn)
        chief_checkpoints = run_folder.path(run_dir, run_folder.CHECKPOINTS)
        if not config.resume and run_folder.checkpoint_numbers(run_dir):
            raise run_folder.RunFolderError(
                f"{run_dir} already holds a run and resume is off (--no-resume); pass another "
                f"--run-dir (nothing was deleted)."
            )
        xla_record = {"source": "requested" if config.xla is not None else "default"}
        if config.xla is None and xla and on_cpu(strategy):
            xla, xla_record = choose_xla(config, spec, strategy, batch_size, log=log)
        config = dataclasses.replace(config, xla=xla)
        hint = bfloat16_hint(config, on_cpu(strategy), cpu())
        if hint:
            log(hint)
        keras.utils.set_random_seed(config.seed)  # after the probe, whose models draw numbers
        if chief:
            os.makedirs(run_dir, exist_ok=True)
            config.save(config_path, {"environment": environment(), "replicas": replicas,
                                      "xla_choice": xla_record,
                                      "global_batch_size": batch_size,
                                      "steps_per_epoch": steps_per_epoch,
                                      "class_names": train_split.class_names})
        # Every worker must take part in saving; only the chief's copy is
        # kept, and every worker resumes from it (the run folder is shared).
        checkpoint_dir = chief_checkpoints
        if not chief:
            task = strategy.cluster_resolver.task_id
            checkpoint_dir = os.path.join(run_dir, ".workers", f"worker-{task}")

        zca = load_or_fit_zca(
            config, lambda: np.concatenate([x for x, _ in train_split.source.batch(4096).as_numpy_iterator()]),
            write=chief) if config.zca else None
        model, preprocess, optimizer, schedule = build_training_objects(config, spec, strategy, steps_per_epoch, zca=zca)
        with strategy.scope():
            best_error = tf.Variable(math.inf, trainable=False, dtype=tf.float64)
        # The record of the epoch an epoch-end checkpoint closes: a run killed
        # between the checkpoint and metrics.jsonl gets its line back.
        epoch_record = tf.Variable("", trainable=False, dtype=tf.string)

        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, preprocess=preprocess,
                                         best_error=best_error, epoch_record=epoch_record)
        manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
        run_folder.restore_newest_intact(checkpoint, run_dir, warn=warn)
        start_step = int(_read(optimizer.iterations))
        log(f"Training {config.model} on {spec.name}: {replicas} replica(s), batch {batch_size}, "
            f"{config.precision}, XLA {'on' if config.xla else 'off'}.")
        if start_step:
            log(f"Resuming {run_dir} from step {start_step} of {total_steps}.")

        run = _Run(config=config, spec=spec, strategy=strategy, model=model, preprocess=preprocess,
                   optimizer=optimizer, schedule=schedule, manager=manager, train_split=train_split,
                   test_split=test_split, batch_size=batch_size, steps_per_epoch=steps_per_epoch, epochs=epochs,
                   chief=chief, best_error=best_error, epoch_record=epoch_record, log=log,
                   progress=_Progress(verbose), step=start_step, last_save_time=time.monotonic())
        _compile_steps(run)
        run.records = logs.read_metrics(run.path(run_folder.METRICS), warn=warn)  # never cut back
        _recover_closed_epoch(run)
        # Epochs a fallback to an older checkpoint trains again: their new lines are marked.
        run.logged_epochs = {r.get("epoch") for r in run.records}
        scalars = run.scalars = logs.TensorBoardScalars(run.path(run_folder.TENSORBOARD)) if chief else None
        test_error = run.records[-1].get("test_error", math.nan) if run.records else math.nan
        for epoch in range(start_step // steps_per_epoch, epochs):
            stats = _train_epoch(run, epoch)
            test_error = _end_epoch(run, epoch, stats, _evaluate(run))["test_error"]

        if not chief:
            import shutil

            shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if chief:
            run_folder.save_model(model, run_folder.path(run_dir, run_folder.MODEL))
        steps_done = int(_read(optimizer.iterations))
        return TrainResult(
            run_dir=run_dir, epochs=epochs, steps=steps_done,
            # The rate of the last update the optimizer applied.
            learning_rate=float(schedule(steps_done - 1)) if callable(schedule) else schedule,
            test_error=test_error, best_test_error=float(best_error.numpy()),
            resumed_from_step=start_step,
        )
    finally:
        keras.config.set_dtype_policy("float32")
        if scalars is not None:
            scalars.close()
        if lock is not None:
            lock.release()
