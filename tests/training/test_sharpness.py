"""SAM and ASAM against the authors' algorithm written in PyTorch
(tests/training/sam_reference.py): a WRN-10-1 in float64, three two-pass
steps with Nesterov SGD and weight decay, weights and batch-norm running
means to 1e-6; the tf.distribute trainer's step here, the Keras fit route on
TensorFlow here and on JAX and PyTorch in their own processes."""

import textwrap

import keras
import pytest

torch = pytest.importorskip("torch")

from keras_wrn.training.optimizer import TorchSGD  # noqa: E402
from keras_wrn.training.sharpness import Sharpness, SharpnessAwareSequential  # noqa: E402
from tests.helpers import backend_report  # noqa: E402
from tests.training import sam_reference as ref  # noqa: E402

TOLERANCE = 1e-6


@pytest.fixture
def float64():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(previous)


def optimizer():
    return TorchSGD(ref.LR, momentum=ref.MOMENTUM, nesterov=True, l2_weight_decay=ref.WEIGHT_DECAY)


def sharpness(minimizer):
    return Sharpness(rho=ref.RHO[minimizer], adaptive=minimizer == "asam")


@pytest.mark.parametrize("minimizer", ["sam", pytest.param("asam", marks=pytest.mark.slow)])
def test_the_distributed_trainers_step_equals_the_reference(minimizer, float64):
    import tensorflow as tf

    from keras_wrn.training.steps import make_train_step

    model, sgd = ref.keras_model(), optimizer()
    sgd.build(model.trainable_variables)
    step = make_train_step(tf.distribute.get_strategy(), model, keras.layers.Identity(), sgd,
                           global_batch_size=ref.BATCH, sharpness=sharpness(minimizer))
    images, labels = ref.batches()
    for i in range(ref.STEPS):
        rows = slice(i * ref.BATCH, (i + 1) * ref.BATCH)
        step(tf.constant(images[rows]), tf.constant(labels[rows], tf.int32))
    assert ref.compare(model, ref.train_reference(minimizer)) < TOLERANCE


def fit_route(minimizer):
    """The Keras fit route's two-pass step on the current backend; returns
    the largest difference from the reference."""
    model = ref.keras_model()
    trainer = SharpnessAwareSequential([keras.Input((ref.SIZE, ref.SIZE, 1)), keras.layers.Identity(), model],
                                       sharpness=sharpness(minimizer))
    trainer.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    jit_compile=False)
    images, labels = ref.batches()
    trainer.fit(images, labels, batch_size=ref.BATCH, epochs=1, shuffle=False, verbose=0)
    return ref.compare(model, ref.train_reference(minimizer))


@pytest.mark.slow
@pytest.mark.parametrize("minimizer", ["sam", "asam"])
def test_the_fit_routes_step_equals_the_reference(minimizer, float64):
    assert fit_route(minimizer) < TOLERANCE

@pytest.mark.slow

def test_plain_sgd_differs_from_sam(float64):
    """The reference tells the two apart: one SGD step's weights are far
    from SAM's."""
    model = ref.keras_model()
    trainer = keras.Sequential([keras.Input((ref.SIZE, ref.SIZE, 1)), model])
    trainer.compile(optimizer=optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images, labels = ref.batches()
    trainer.fit(images, labels, batch_size=ref.BATCH, epochs=1, shuffle=False, verbose=0)
    assert ref.compare(model, ref.train_reference("sam")) > 1e-4


BACKEND_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    import keras
    keras.config.set_dtype_policy("float64")
    from tests.training.test_sharpness import fit_route
    print(json.dumps({"backend": keras.backend.backend(), "gaps": {m: fit_route(m) for m in ("sam", "asam")}}))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_fit_route_on_jax_and_torch(backend):
    report = backend_report(BACKEND_SCRIPT, backend, JAX_ENABLE_X64="1")
    for minimizer, gap in report["gaps"].items():
        assert gap < TOLERANCE, (backend, minimizer, gap)
