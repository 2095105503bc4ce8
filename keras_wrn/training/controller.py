"""The one training loop (Orbit's Controller) and the small interface each
trainer fills (Orbit's StandardTrainer): whichever backend trains, the
controller runs

    prepare: devices, batch, data, the run plan       trainer, before the folder is touched
    the folder's lock; its identity; --no-resume       session.RunSession
    settle: the config as this run resolves it (XLA)   trainer; config.json (session)
    the run's ZCA statistics                           session
    build: model, optimizer, steps; its store          trainer (a checkpoints.CheckpointStore)
    restore the newest intact checkpoint; the epoch    store; session.end_epoch
      it closed gets its files if a kill came first
    each epoch: train, test (and the EMA's weights),   trainer; the record here (records.EpochRecord)
      the checkpoint carrying the record, then the     store, then session.end_epoch
      epoch's files; stop early when asked
    the final model                                    session
    a peer gone: one line and the end of the process

and writes in the run folder only through the session and the store.
"""

import contextlib
import dataclasses
import functools
import os
import re
import sys

from keras_wrn.training import records, run_folder
from keras_wrn.training.metrics import TOP5_FROM_CLASSES
from keras_wrn.training.session import RunSession, TrainResult


@dataclasses.dataclass(frozen=True)
class Trained:
    """What a trainer's epoch of training measured: the optimizer steps
    after it, the mean training loss and error, the seconds and images of
    the part trained in this process (a resumed epoch: what was left)."""

    step: int
    loss: float
    error: float
    seconds: float
    images: int
    resumed_mid_epoch: bool = False


class Trainer:
    """A route's part of a run: its devices and data feed (`prepare`), its
    steps (`build`, `train_epoch`, `test`) and its checkpoint store. Set
    `name` (a key of `run_folder.CHECKPOINT_PATTERNS`); `prepare` sets
    `plan` (a `session.RunPlan`) and `chief`, `build` sets `net` (the
    network, logits) and `schedule` (the optimizer's learning rate)."""

    name = None

    def __init__(self, config, spec, *, verbose=True):
        self.config, self.spec, self.verbose = config, spec, verbose
        self.log = print if verbose else (lambda *args, **kwargs: None)
        self.warn = functools.partial(print, file=sys.stderr)  # shown even when not verbose
        self.chief = True
        self.plan = None  # the RunPlan (prepare)
        self.net = self.schedule = None  # the network and its learning-rate schedule (build)

    @property
    def batch_size(self):
        return self.plan.batch_size

    @property
    def steps_per_epoch(self):
        return self.plan.steps_per_epoch

    @property
    def epochs(self):
        return self.plan.epochs

    def prepare(self):
        """Devices, batch, data and the run plan, before the run folder is touched."""
        raise NotImplementedError

    def settle(self):
        """`(config, extra)`: the config as this run resolves it (XLA) and what
        config.json records beside it, once the folder is known to be this run's."""
        return self.config, {}

    def training_images(self):
        """The whole training split, uint8 `(N, H, W, C)` (for the ZCA fit)."""
        raise NotImplementedError

    def build(self, zca):
        """The model, optimizer and steps; returns the run's `CheckpointStore`."""
        raise NotImplementedError

    def route(self):
        """Where the run trains, for its first line (e.g. "2 replica(s)")."""
        raise NotImplementedError

    def train_epoch(self, epoch, step):
        """Trains epoch `epoch` (from 0) from optimizer step `step`; a `Trained`."""
        raise NotImplementedError

    def test(self):
        """`(loss, top-1 error, top-5 error)` on the test split (the plan's
        `test_examples` of it), exact over every example (`metrics`)."""
        raise NotImplementedError

    def ema_weights(self):
        """A context with the moving average of the weights swapped into
        `net` (`steps.ema_weights`); asked for only in runs with --ema."""
        raise NotImplementedError

    def steps_done(self):
        raise NotImplementedError

    def lost_peer(self, error):
        """Who stopped answering (e.g. "host 1 of 2"), when `error`, raised
        while training, says that a peer of this multi-process run is gone;
        None for any other error (re-raised as it is); a trainer of one
        process has no peers."""

    def saving(self):
        """The context the chief writes the run's model files in."""
        return contextlib.nullcontext()

    def close(self):
        """Gives back what the trainer changed in the process (always called)."""


class Controller:
    """Runs `trainer` (a `Trainer`) through a run, as the module docstring
    says. `stop_when()`, asked after each epoch's files, ends the run there
    when true (a time budget); the run stays resumable."""

    def __init__(self, trainer, *, stop_when=None):
        self.trainer = trainer
        self.config = trainer.config  # one config: settled once, then shared by the trainer and the session
        self.stop_when = stop_when or (lambda: False)
        self.log, self.warn = trainer.log, trainer.warn
        self.session = self.store = None
        self.start_step = 0

    def run(self):
        """The run; returns a `session.TrainResult`."""
        try:
            return self._run()
        finally:
            self.trainer.close()

    def _run(self):
        import keras

        trainer = self.trainer
        trainer.prepare()
        with RunSession(self.config, trainer.spec, trainer=trainer.name, chief=trainer.chief, log=self.log,
                        warn=self.warn) as session:
            self.session = session
            session.open(run_folder.CHECKPOINT_PATTERNS[trainer.name])
            config, extra = trainer.settle()
            self.config = trainer.config = session.config = config
            keras.utils.set_random_seed(config.seed)  # after settle: a probe draws numbers too
            session.write_config(config, extra)
            zca = session.zca(trainer.training_images) if config.zca else None
            self.store = trainer.build(zca)
            restored = self.store.restore()
            self.start_step = restored.step
            self._announce()
            self._recover(restored)
            try:
                self._train()
            except Exception as error:
                peer = trainer.lost_peer(error)
                if peer is None:
                    raise
                self._end_for_lost_peer(peer, error)
            with trainer.saving():
                session.save_model(trainer.net)
            return self._result()

    def _announce(self):
        """The run's first line, whichever trainer runs it, and where a resumed run resumes."""
        config, plan = self.config, self.trainer.plan
        self.log(f"Training {config.model} on {self.trainer.spec.name}: {self.trainer.route()}, batch "
                 f"{plan.batch_size}, {config.precision}, XLA {'on' if config.xla else 'off'}.")
        if self.start_step:
            epoch, into = divmod(self.start_step, plan.steps_per_epoch)
            where = f"the end of epoch {epoch}" if not into else f"{into} steps into epoch {epoch + 1}"
            self.log(f"Resuming {config.run_dir} from step {self.start_step} of {plan.steps} ({where}).")

    def _recover(self, restored):
        """A run killed after an epoch-end checkpoint but before that epoch's
        files: the checkpoint carries the epoch's record, so they are written now."""
        closed = restored.closed
        if self.trainer.chief and closed is not None and closed.step == restored.step \
                and not self.session.logged(closed.epoch):
            with self.trainer.saving():
                self.session.end_epoch(closed, self.trainer.net, ema=self._ema())

    def _train(self):
        trainer, step = self.trainer, self.start_step
        for epoch in range(step // trainer.steps_per_epoch, trainer.epochs):
            trained = trainer.train_epoch(epoch, step)
            step = trained.step
            record = self._record(epoch, trained)
            with trainer.saving():
                self.store.save(step, record)  # first: the epoch's files are remade from it after a kill
                self.session.end_epoch(record, trainer.net, ema=self._ema())
            self.log(record.summary(trainer.epochs), flush=True)
            if self.stop_when():
                break
        self.store.finish()

    def _ema(self):
        """`session.end_epoch`'s `ema`: the trainer's EMA context maker, or None without --ema."""
        return self.trainer.ema_weights if self.config.ema_decay else None

    def _record(self, epoch, trained):
        """The epoch's record: what training measured, the test figures of
        the weights and, with --ema, of their moving average."""
        from keras_wrn.training.schedules import rate_at

        trainer = self.trainer
        tested = dict(zip(("test_loss", "test_error", "test_top5_error"), trainer.test()))
        if self.config.ema_decay:
            with trainer.ema_weights():
                tested.update(zip(("ema_test_loss", "ema_test_error", "ema_test_top5_error"), trainer.test()))
        if trainer.spec.num_classes < TOP5_FROM_CLASSES:
            tested = {key: value for key, value in tested.items() if "top5" not in key}
        return records.EpochRecord(
            epoch=epoch + 1, step=trained.step, learning_rate=rate_at(trainer.schedule, trained.step),
            train_loss=trained.loss, train_error=trained.error, **{k: float(v) for k, v in tested.items()},
            epoch_seconds=round(trained.seconds, 3),
            images_per_second=round(trained.images / max(trained.seconds, 1e-9), 1),
            resumed_mid_epoch=trained.resumed_mid_epoch)

    def _result(self):
        from keras_wrn.training.schedules import rate_at

        steps = self.trainer.steps_done()
        session = self.session
        return TrainResult(run_dir=self.config.run_dir, epochs=self.trainer.epochs, steps=steps,
                           learning_rate=rate_at(self.trainer.schedule, steps), test_error=session.last_test_error(),
                           best_test_error=session.best_test_error, resumed_from_step=self.start_step)

    def _end_for_lost_peer(self, peer, error):
        """One line instead of the frameworks' crash dump, then the end of
        this process at once: its collectives and coordination service
        would otherwise abort it with their own logs. What the run folder
        holds was written atomically; the lock goes with the process."""
        from keras_wrn import framework_logs

        finished = max((r.get("epoch", 0) for r in self.session.records), default=0)
        # The first line of the framework's message, without TensorFlow's {{function_node ...}} prefix.
        reason = re.sub(r"\{\{.*?\}\}\s*", "", (str(error).strip().splitlines() or [""])[0])[:200]
        unit = "host" if "host" in peer else "worker"
        sys.stderr.write(
            f"Error: {peer} stopped answering ({type(error).__name__}: {reason}). The run folder "
            f"{self.config.run_dir} holds every finished epoch ({finished} of {self.trainer.epochs}): start every "
            f"{unit} again with the same command to resume.\n")
        with contextlib.suppress(Exception):
            if self.session.scalars is not None:
                self.session.scalars.close()
        sys.stdout.flush()
        sys.stderr.flush()
        framework_logs.flush()
        os._exit(1)
