"""The tf.distribute trainer: `keras-wrn train` on the TensorFlow backend.

A custom `strategy.run` loop under any tf.distribute strategy (Keras 3 `fit`
fails under MultiWorkerMirroredStrategy on TF 2.21), with exact resume: the
optimizer's step count is the single source of truth, and the data order of
epoch e depends only on (seed, e), so a run restarted from a checkpoint
taken at step s skips the s mod steps_per_epoch batches it had already
trained on and ends with the optimizer steps and learning rate of an
uninterrupted run. The controller (`controller.Controller`) runs the epochs;
the checkpoints are `checkpoints.TFCheckpointStore`'s.
"""

import contextlib
import dataclasses
import sys
import time

from keras_wrn.training.controller import Trained, Trainer
from keras_wrn.training.session import RunPlan
from keras_wrn.training.sharpness import Sharpness
from keras_wrn.training.steps import (
    build_training_objects,
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
    """tf.distribute as a `controller.Trainer`: `prepare` (strategy, batch,
    tf.data splits), `settle` (XLA by measurement), `build` (model,
    optimizer, compiled steps; a `TFCheckpointStore`), `train_epoch` (the
    replicas' steps, checkpointing mid-epoch when due), `test`."""

    name = "tf.distribute"

    def __init__(self, config, spec, **kwargs):
        super().__init__(config, spec, **kwargs)
        self.strategy, self.replicas, self.xla = None, 1, False  # (prepare)
        self.train_split = self.test_split = None  # datasets.Split (prepare)
        self.preprocess = self.optimizer = None  # beside `net` (build)
        self.store = None  # the TFCheckpointStore (build)
        self.last_save_time = 0.0  # when the last checkpoint was saved
        self.train_step = self.eval_step = None  # the compiled steps (build)

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
        from keras_wrn.training.checkpoints import TFCheckpointStore

        config = self.config
        self.net, self.preprocess, self.optimizer, self.schedule = build_training_objects(
            config, self.spec, self.strategy, self.steps_per_epoch, zca=zca, epochs=self.epochs)
        objects = {"model": self.net, "optimizer": self.optimizer, "preprocess": self.preprocess,
                   "random_state": random_state(self.preprocess, self.net)}
        # Every worker must take part in saving; only the chief's copy is kept.
        worker = None if self.chief else self.strategy.cluster_resolver.task_id
        self.store = TFCheckpointStore(config.run_dir, objects, task_id=worker, warn=self.warn)
        self.last_save_time = time.monotonic()
        self._compile_steps()
        return self.store

    def route(self):
        return f"{self.replicas} replica(s)"

    def steps_done(self):
        return int(_read(self.optimizer.iterations))

    def lost_peer(self, error):
        from keras_wrn.training.strategies import lost_worker

        return lost_worker(self.strategy, error)

    def _compile_steps(self):
        """The training step (`steps.make_train_step`) and the test step
        (`metrics.error_sums`), each replica's work XLA-compiled when the run
        uses XLA."""
        import tensorflow as tf

        from keras_wrn.training.metrics import TOP5_FROM_CLASSES, error_sums

        top5 = self.spec.num_classes >= TOP5_FROM_CLASSES
        model, preprocess, strategy = self.net, self.preprocess, self.strategy

        def eval_replica(images, labels, weights):
            logits = model(preprocess(images, training=False), training=False)
            return error_sums(logits, labels, weights, top5=top5)

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

    def train_epoch(self, epoch, step):
        """The epoch's steps from `step` (a resumed run skips what it did),
        checkpointing mid-epoch when due."""
        from keras_wrn import data

        config, spe = self.config, self.steps_per_epoch
        skip = step - epoch * spe
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: data.batches(self.train_split, self.batch_size, epoch=epoch, seed=config.seed,
                                     skip_steps=skip, max_steps=spe, input_context=ctx,
                                     deterministic=config.deterministic))
        started, loss_sum, wrong_sum, seen = time.monotonic(), 0.0, 0.0, 0
        with _Progress(self.verbose).epoch(f"epoch {epoch + 1}/{self.epochs}", spe, skip) as advance:
            for images, labels in dataset:
                loss, wrong = self.train_step(images, labels)
                step += 1
                seen += 1
                loss_sum += float(loss)
                wrong_sum += float(wrong)
                advance(info=f"loss {loss_sum / seen:.4f}")
                due_steps = config.checkpoint_steps and step % config.checkpoint_steps == 0
                due_time = time.monotonic() - self.last_save_time >= 60 * config.checkpoint_minutes
                if (due_steps or due_time) and step % spe:
                    self.store.save(step)
                    self.last_save_time = time.monotonic()
        self.last_save_time = time.monotonic()  # the controller saves the epoch's end
        return Trained(step=step, loss=loss_sum / max(seen, 1), error=wrong_sum / max(seen * self.batch_size, 1),
                       seconds=time.monotonic() - started, images=seen * self.batch_size,
                       resumed_mid_epoch=bool(skip))

    def test(self):
        from keras_wrn import data
        from keras_wrn.training.metrics import figures

        totals = [0.0] * 4
        dataset = self.strategy.distribute_datasets_from_function(
            lambda ctx: data.evaluation_batches(self.test_split, self.batch_size, input_context=ctx,
                                                max_examples=self.plan.test_examples))
        for images, labels, weights in dataset:
            totals = [t + float(v) for t, v in zip(totals, self.eval_step(images, labels, weights))]
        return figures(totals)

    def ema_weights(self):
        return ema_weights(self.net, self.optimizer)
