"""Learning-rate schedules of the paper's recipes, in optimizer steps."""

from keras.optimizers.schedules import PiecewiseConstantDecay

from keras_wrn.errors import InvalidArgumentError


def rate_at(schedule, step):
    """The learning rate update number `step` (counted from 1) used, for a
    schedule (a Keras `LearningRateSchedule`) or a constant rate, as a float."""
    return float(schedule(step - 1) if callable(schedule) else schedule)


PAPER_EPOCHS, PAPER_BOUNDARIES = 200, (60, 120, 160)  # the CIFAR recipe's rate drops (x0.2)


def scaled_boundaries(epochs, paper_epochs=PAPER_EPOCHS, paper_boundaries=PAPER_BOUNDARIES):
    """The paper's rate drops (60, 120, 160 of 200 epochs) at the same
    fractions of `epochs`: `scaled_boundaries(30) == (9, 18, 24)`."""
    return tuple(sorted({round(b * epochs / paper_epochs) for b in paper_boundaries} - {0, 1}))


def epoch_step_decay(initial_learning_rate, boundary_epochs, factor, steps_per_epoch):
    """The official step schedule: multiply the rate by `factor` when each of
    `boundary_epochs` begins, counting epochs from 1.

    CIFAR: `epoch_step_decay(0.1, (60, 120, 160), 0.2, steps)` gives 0.1 in
    epochs 1-59, 0.02 in 60-119, 0.004 in 120-159, 0.0008 from 160 on.
    SVHN: `epoch_step_decay(0.01, (80, 120), 0.1, steps)`.

    Keras evaluates a schedule at `optimizer.iterations`, the number of
    updates already applied, so the first update of epoch e runs at step
    `(e - 1) * steps_per_epoch`; `PiecewiseConstantDecay` switches on
    `step > boundary`, hence the `- 1`.
    """
    boundary_epochs = tuple(boundary_epochs)
    if steps_per_epoch < 1:
        raise InvalidArgumentError(
            f"steps_per_epoch must be >= 1. Received: steps_per_epoch={steps_per_epoch!r}"
        )
    if any(e < 2 for e in boundary_epochs) or list(boundary_epochs) != sorted(set(boundary_epochs)):
        raise InvalidArgumentError(
            "boundary_epochs must be increasing epoch numbers >= 2 (epochs count "
            f"from 1). Received: boundary_epochs={boundary_epochs!r}"
        )
    if not boundary_epochs:
        return initial_learning_rate
    boundaries = [(e - 1) * steps_per_epoch - 1 for e in boundary_epochs]
    values = [initial_learning_rate * factor**i for i in range(len(boundary_epochs) + 1)]
    return PiecewiseConstantDecay(boundaries, values)


def cosine_decay(initial_learning_rate, epochs, steps_per_epoch, warmup_epochs=0):
    """Cosine decay from `initial_learning_rate` to 0 at the end of `epochs`,
    after `warmup_epochs` of linear warm-up from 0: Keras' `CosineDecay`
    (its `warmup_target`), in optimizer steps.

    The rate of update s (counted from 0, as Keras evaluates a schedule at
    `optimizer.iterations`) after W warm-up steps, over T steps in all:
    `lr * s / W` while s < W, then `lr * (1 + cos(pi * (s - W) / (T - W))) / 2`.
    The SAM recipes decay per step (davda54/sam: per epoch; the difference is
    below 0.01 of the rate after the first epoch).
    """
    from keras.optimizers.schedules import CosineDecay

    if steps_per_epoch < 1 or epochs < 1 or not 0 <= warmup_epochs < epochs:
        raise InvalidArgumentError(
            f"cosine_decay needs steps_per_epoch >= 1, epochs >= 1 and 0 <= warmup_epochs < epochs. Received: "
            f"steps_per_epoch={steps_per_epoch!r}, epochs={epochs!r}, warmup_epochs={warmup_epochs!r}")
    warmup_steps = warmup_epochs * steps_per_epoch
    decay_steps = epochs * steps_per_epoch - warmup_steps
    if not warmup_steps:
        return CosineDecay(initial_learning_rate, decay_steps)
    return CosineDecay(0.0, decay_steps, warmup_target=initial_learning_rate, warmup_steps=warmup_steps)


def learning_rate_schedule(config, steps_per_epoch, epochs):
    """The run's schedule: `config.schedule` of `config.learning_rate` over
    `epochs` epochs (the run's, shortened in smoke runs)."""
    if config.schedule == "cosine":
        return cosine_decay(config.learning_rate, epochs, steps_per_epoch, config.warmup_epochs)
    return epoch_step_decay(config.learning_rate, config.lr_boundaries, config.lr_factor, steps_per_epoch)
