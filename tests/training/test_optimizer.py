"""TorchSGD against a hand-written reference of torch.optim.SGD; the schedule
on both sides of every boundary."""

import keras
import numpy as np
import pytest

from keras_wrn.training import TorchSGD, epoch_step_decay


def torch_sgd_reference(params, grad_fn, lrs, momentum, nesterov, weight_decay):
    """torch.optim.SGD.step (dampening 0), written from Torch's documentation."""
    params = [p.astype(np.float64).copy() for p in params]
    buffers = [None] * len(params)
    for lr in lrs:
        grads = grad_fn(params)
        for i, (p, g) in enumerate(zip(params, grads)):
            d = g + weight_decay * p
            if momentum:
                buffers[i] = d.copy() if buffers[i] is None else momentum * buffers[i] + d
                d = d + momentum * buffers[i] if nesterov else buffers[i]
            params[i] = p - lr * d
    return params


def quadratic_problem(seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(5, 4))
    b = rng.normal(size=(5,))
    w0, c0 = rng.normal(size=(4,)), rng.normal(size=())

    def grads(params):
        w, c = params
        r = a @ w + c - b
        return [a.T @ r / len(b), np.asarray(r.mean())]

    return [w0, np.asarray(c0)], grads


@pytest.mark.parametrize("nesterov, momentum, decay", [(True, 0.9, 5e-4), (False, 0.9, 5e-4), (False, 0.0, 1e-2)])
def test_matches_torch_sgd_step_for_step(nesterov, momentum, decay):
    initial, grad_fn = quadratic_problem()
    steps_per_epoch = 3
    schedule = epoch_step_decay(0.1, (3, 5), 0.2, steps_per_epoch)
    lrs = [0.1] * 6 + [0.02] * 6 + [0.004] * 6
    expected = torch_sgd_reference(initial, grad_fn, lrs, momentum, nesterov, decay)

    variables = [keras.Variable(p.astype("float32")) for p in initial]
    optimizer = TorchSGD(schedule, momentum=momentum, nesterov=nesterov, l2_weight_decay=decay)
    for _ in lrs:
        grads = grad_fn([keras.ops.convert_to_numpy(v).astype(np.float64) for v in variables])
        optimizer.apply_gradients(zip([g.astype("float32") for g in grads], variables))
    assert int(optimizer.iterations) == len(lrs)
    for variable, reference in zip(variables, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), reference, rtol=1e-5, atol=1e-6)


def test_differs_from_keras_sgd_after_a_rate_drop():
    """Keras' SGD keeps lr inside its momentum; Torch does not."""
    initial, grad_fn = quadratic_problem(1)
    schedule = epoch_step_decay(0.1, (2,), 0.1, 2)
    ours = [keras.Variable(p.astype("float32")) for p in initial]
    theirs = [keras.Variable(p.astype("float32")) for p in initial]
    opt_ours = TorchSGD(schedule, l2_weight_decay=0.0)
    opt_theirs = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    for _ in range(4):
        for opt, vs in ((opt_ours, ours), (opt_theirs, theirs)):
            grads = grad_fn([keras.ops.convert_to_numpy(v).astype(np.float64) for v in vs])
            opt.apply_gradients(zip([g.astype("float32") for g in grads], vs))
    gap = np.abs(keras.ops.convert_to_numpy(ours[0]) - keras.ops.convert_to_numpy(theirs[0])).max()
    assert gap > 1e-3


def test_learning_rate_on_both_sides_of_each_boundary():
    spe = 390  # CIFAR at batch 128, last partial batch dropped
    schedule = epoch_step_decay(0.1, (60, 120, 160), 0.2, spe)

    def rate_at_first_update_of(epoch):
        return float(schedule((epoch - 1) * spe))

    def rate_at_last_update_of(epoch):
        return float(schedule(epoch * spe - 1))

    assert rate_at_first_update_of(1) == pytest.approx(0.1)
    for epoch, before, after in ((60, 0.1, 0.02), (120, 0.02, 0.004), (160, 0.004, 0.0008)):
        assert rate_at_last_update_of(epoch - 1) == pytest.approx(before)
        assert rate_at_first_update_of(epoch) == pytest.approx(after)
    assert rate_at_last_update_of(200) == pytest.approx(0.0008)


def test_bad_arguments():
    with pytest.raises(ValueError, match="decay twice"):
        TorchSGD(weight_decay=1e-4)
    with pytest.raises(ValueError, match="increasing epoch numbers"):
        epoch_step_decay(0.1, (120, 60), 0.2, 10)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        epoch_step_decay(0.1, (60,), 0.2, 0)


def test_config_round_trip():
    optimizer = TorchSGD(0.05, momentum=0.8, nesterov=False, l2_weight_decay=1e-4)
    clone = TorchSGD.from_config(optimizer.get_config())
    assert (clone.momentum, clone.nesterov, clone.l2_weight_decay) == (0.8, False, 1e-4)
