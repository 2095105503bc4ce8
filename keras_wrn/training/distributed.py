"""The tf.distribute trainer: `keras-wrn train` on the TensorFlow backend.

A custom `strategy.run` loop under any tf.distribute strategy (Keras 3 `fit`
fails under MultiWorkerMirroredStrategy on TF 2.21), with exact resume: the
optimizer's step count is the single source of truth, and the data order of
epoch e depends only on (seed, e), so a run restarted from a checkpoint
taken at step s skips the s mod steps_per_epoch batches it had already
trained on and ends with the optimizer steps and learning rate of an
uninterrupted run. The epoch-end checkpoint carries its epoch's record, so a
run killed between the checkpoint and the epoch's files gets them back.
"""

import contextlib
import dataclasses
import json
import shutil
import sys
import time

from keras_wrn.training import records, run_folder
from keras_wrn.training.schedules import rate_at
from keras_wrn.training.session import RunPlan, Trainer
from keras_wrn.training.sharpness import Sharpness
from keras_wrn.training.steps import (
    build_training_objects,
    ema_context,
    ema_fields,
    ema_weights,
    make_train_step,
    random_state,
    replica_function,
)


def bfloat16_hint(config, on_cpu, processor):
    """The line a float32 run without XLA on a CPU with bfloat16
    instructions (`provenance.CPU.native_bfloat16`) prints, or None: oneDNN's
    bf16 kernels trained 1.7x faster there (XLA:CPU's gain little)."""
    if config.precision == "float32" and not (config.smoke or config.xla) and on_cpu \
            and processor.native_bfloat16:
        return ("This CPU computes bfloat16 natively: --precision mixed_bfloat16 trained 1.7x faster than "
                "float32 on an AMD Zen 4, to the same accuracy (docs/benchmarks.md).")
    return None


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


class DistributedTrainer(Trainer):
    """Phases: `prepare` (strategy, batch, tf.data splits), `settle` (XLA by
    measurement), `build` (model, optimizer, checkpoint, restore, compiled
    steps), then per epoch `_train_epoch`, `_evaluate`, `_end_epoch`."""

    name = "tf.distribute"

    def __init__(self, config, spec, **kwargs):
        super().__init__(config, spec, **kwargs)
        self.strategy, self.replicas, self.xla = None, 1, False  # (prepare)
        self.train_split = self.test_split = None  # datasets.Split (prepare)
        self.preprocess = self.optimizer = None  # beside `net` (build)
        self.epoch_record = self.manager = self.checkpoint_dir = None  # the checkpoint and its store (build)
        self.step, self.last_save_time = 0, 0.0  # optimizer steps done; when the last checkpoint was saved
        self.train_step = self.eval_step = None  # the compiled steps (build)
        self.ema_tested = None  # the EMA weights' test figures of the epoch (_evaluate)

    def prepare(self):
        from keras_wrn import data
        from keras_wrn.training.strategies import is_chief, make_strategy, resolve_xla, split_cpu

        config, spec = self.config, self.spec
        if config.cpu_devices:
            split_cpu(config.cpu_devices)
        self.strategy = make_strategy(config.strategy, config.tpu)
        self.replicas = self.strategy.num_replicas_in_sync
        self.xla = resolve_xla(config.xla, self.strategy)
        RunPlan.global_batch(config, self.replicas)  # before the data are read
        if data.from_tfds(spec, config.data_dir):
            data.prepare(spec, config.data_dir, download=config.download, mirror=config.data_mirror, log=self.log)
        self.train_split = data.load_split(spec, "train", data_dir=config.data_dir, training=True)
        self.test_split = data.load_split(spec, "test", data_dir=config.data_dir)
        self.plan = RunPlan.of(config, self.replicas, self.train_split.num_examples)
        self.chief = is_chief(self.strategy)

    def settle(self):
        from keras_wrn import provenance
        from keras_wrn.training.strategies import on_cpu
        from keras_wrn.training.xla_choice import choose_xla

        config, xla = self.config, self.xla
        xla_record = {"source": "requested" if config.xla is not None else "default"}
        if config.xla is None and xla and on_cpu(self.strategy):
            xla, xla_record = choose_xla(config, self.spec, self.strategy, self.batch_size, log=self.log)
        config = dataclasses.replace(config, xla=xla)
        hint = bfloat16_hint(config, on_cpu(self.strategy), provenance.cpu())
        if hint:
            self.log(hint)
        return config, {"replicas": self.replicas, "xla_choice": xla_record, "global_batch_size": self.batch_size,
                        "steps_per_epoch": self.steps_per_epoch, "class_names": self.train_split.class_names}

    def training_images(self):
        return self.train_split.images()

    def build(self, zca):
        import tensorflow as tf

        config, run_dir = self.config, self.config.run_dir
        self.net, self.preprocess, self.optimizer, self.schedule = build_training_objects(
            config, self.spec, self.strategy, self.steps_per_epoch, zca=zca, epochs=self.epochs)
        # The record of the epoch an epoch-end checkpoint closes: a run killed
        # between the checkpoint and metrics.jsonl gets its line back.
        self.epoch_record = tf.Variable("", trainable=False, dtype=tf.string)
        checkpoint = tf.train.Checkpoint(model=self.net, optimizer=self.optimizer, preprocess=self.preprocess,
                                         random_state=random_state(self.preprocess, self.net),
                                         epoch_record=self.epoch_record)
        # Every worker must take part in saving; only the chief's copy is
        # kept, and every worker resumes from it (the run folder is shared).
        self.checkpoint_dir = run_folder.path(run_dir, run_folder.CHECKPOINTS) if self.chief else \
            run_folder.worker_checkpoints(run_dir, self.strategy.cluster_resolver.task_id)
        self.manager = tf.train.CheckpointManager(checkpoint, self.checkpoint_dir, max_to_keep=2)
        run_folder.restore_newest_intact(checkpoint, run_dir, warn=self.warn)
        self.step = self.start_step = int(_read(self.optimizer.iterations))
        self.announce(f"{self.replicas} replica(s)")
        self.last_save_time = time.monotonic()
        self._compile_steps()
        self._recover_closed_epoch()

    def train_epochs(self):
        for epoch in range(self.step // self.steps_per_epoch, self.epochs):
            stats = self._train_epoch(epoch)
            self._end_epoch(epoch, stats, self._evaluate())
            if self.stop_when():
                break
        if not self.chief:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    def steps_done(self):
        return int(_read(self.optimizer.iterations))

    def lost_peer(self, error):
        from keras_wrn.training.strategies import lost_worker

        return lost_worker(self.strategy, error)

    def _compile_steps(self):
        """The training step (`steps.make_train_step`) and the test step, each
        replica's work XLA-compiled when the run uses XLA."""
        import keras
        import tensorflow as tf

        top5 = self.spec.num_classes >= 100
        model, preprocess, strategy = self.net, self.preprocess, self.strategy

        def eval_replica(images, labels, weights):
            logits = tf.cast(model(preprocess(images, training=False), training=False), tf.float32)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            wrong1 = tf.cast(tf.argmax(logits, -1, output_type=tf.int32) != labels, tf.float32)
            wrong5 = 1.0 - tf.cast(tf.math.in_top_k(labels, logits, 5), tf.float32) if top5 else wrong1
            return [tf.reduce_sum(v * weights) for v in (per_example, wrong1, wrong5, tf.ones_like(weights))]

        eval_replica = replica_function(eval_replica, self.config.xla)

        @tf.function
        def eval_step(images, labels, weights):
            values = strategy.run(eval_replica, args=(images, labels, weights))
            return [strategy.reduce("SUM", v, axis=None) for v in values]

        self.eval_step = eval_step
        self.train_step = make_train_step(strategy, model, preprocess, self.optimizer,
                                          global_batch_size=self.batch_size, precision=self.config.precision,
                                          xla=self.config.xla, label_smoothing=self.config.label_smoothing,
                                          sharpness=Sharpness.from_config(self.config))

    def _recover_closed_epoch(self):
        """A run killed after an epoch-end checkpoint but before that epoch's
        files: the checkpoint carries the epoch's record, so they are written now."""
        closed = json.loads(self.epoch_record.numpy().decode() or "null")
        if self.chief and closed and closed["step"] == self.step and not self.session.logged(closed["epoch"]):
            self.session.end_epoch(records.EpochRecord(**closed), self.net,
                                   ema=ema_context(self.config, self.net, self.optimizer))

    def _save_checkpoint(self):
        """`manager.save` whose failure (a full disk) removes its half-written
        folder and says what is intact, instead of a TensorFlow traceback."""
        import tensorflow as tf

        try:
            self.manager.save(checkpoint_number=self.step)
        except tf.errors.OpError as error:
            run_dir = self.config.run_dir
            run_folder.remove_debris(run_dir)
            older = run_folder.checkpoint_numbers(run_dir)
            reason = error.message.rsplit(";", 1)[-1].strip() or type(error).__name__
            raise run_folder.RunFolderWriteError(
                f"Could not write checkpoint {self.step} in {self.manager.directory}: {reason}. The previous "
                f"checkpoint ({f'ckpt-{older[0]}' if older else 'none yet'}) and the run's other files are intact. "
                f"{run_folder.RESUME_ADVICE}") from None
        self.last_save_time = time.monotonic()

    def _train_epoch(self, epoch):
        """The epoch's steps from where the run stands (a resumed run skips
        what it did), checkpointing mid-epoch when due. Returns its sums."""
        from keras_wrn import data

        config, spe = self.config, self.steps_per_epoch
        skip = self.step - epoch * spe
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: data.batches(self.train_split, self.batch_size, epoch=epoch, seed=config.seed,
                                     skip_steps=skip, max_steps=spe, input_context=ctx,
                                     deterministic=config.deterministic))
        started, loss_sum, wrong_sum, seen = time.monotonic(), 0.0, 0.0, 0
        with _Progress(self.verbose).epoch(f"epoch {epoch + 1}/{self.epochs}", spe, skip) as advance:
            for images, labels in dataset:
                loss, wrong = self.train_step(images, labels)
                self.step += 1
                seen += 1
                loss_sum += float(loss)
                wrong_sum += float(wrong)
                advance(info=f"loss {loss_sum / seen:.4f}")
                due_steps = config.checkpoint_steps and self.step % config.checkpoint_steps == 0
                due_time = time.monotonic() - self.last_save_time >= 60 * config.checkpoint_minutes
                if (due_steps or due_time) and self.step % spe:
                    self._save_checkpoint()
        return {"skip": skip, "seen": seen, "loss_sum": loss_sum, "wrong_sum": wrong_sum,
                "seconds": time.monotonic() - started}

    def _evaluate(self):
        """`(loss, top-1 error, top-5 error)` on the test split (the first
        steps' worth of it in smoke runs), exact over every example; with an
        EMA, `ema_tested` the same for the averaged weights."""
        self.ema_tested = None
        if self.config.ema_decay:
            with ema_weights(self.net, self.optimizer):
                self.ema_tested = self._evaluate_current()
        return self._evaluate_current()

    def _evaluate_current(self):
        from keras_wrn import data

        totals = [0.0] * 4
        max_examples = self.plan.test_examples
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: data.evaluation_batches(self.test_split, self.batch_size, input_context=ctx,
                                                max_examples=max_examples))
        for images, labels, weights in dataset:
            totals = [t + float(v) for t, v in zip(totals, self.eval_step(images, labels, weights))]
        loss, wrong1, wrong5, count = totals
        return loss / count, wrong1 / count, wrong5 / count

    def _end_epoch(self, epoch, stats, tested):
        """The epoch's record; the epoch-end checkpoint, which carries it,
        first; then the run folder's files (`session.end_epoch`)."""
        test_loss, test_error, test_top5 = tested
        seen, seconds = stats["seen"], stats["seconds"]
        record = records.EpochRecord(
            epoch=epoch + 1, step=self.step,
            learning_rate=rate_at(self.schedule, self.step),
            train_loss=stats["loss_sum"] / max(seen, 1),
            train_error=stats["wrong_sum"] / max(seen * self.batch_size, 1),
            test_loss=test_loss, test_error=test_error,
            test_top5_error=test_top5 if self.spec.num_classes >= 100 else None,
            **ema_fields(self.ema_tested, self.spec.num_classes),
            epoch_seconds=round(seconds, 3), images_per_second=round(seen * self.batch_size / max(seconds, 1e-9), 1),
            resumed_mid_epoch=bool(stats["skip"]))
        self.epoch_record.assign(json.dumps(record.to_dict()))
        self._save_checkpoint()  # first: the files below are remade from it
        self.session.end_epoch(record, self.net, ema=ema_context(self.config, self.net, self.optimizer))
        self.log(record.summary(self.epochs))
