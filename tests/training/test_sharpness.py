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


REPLICAS_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from keras_wrn.training import sharpness as sam, steps
from keras_wrn.training.optimizer import TorchSGD

def train(strategy, local_ascent=False):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, activation="relu"),
                                  keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
        optimizer = TorchSGD(0.5, momentum=0.9, nesterov=True, l2_weight_decay=5e-4)
        optimizer.build(model.trainable_variables)
    if local_ascent:  # each replica ascends along its own half-batch gradient
        original = sam.tf_perturbed_gradients
        sam.tf_perturbed_gradients = lambda *args: original(*args[:5], 1)
    step = steps.make_train_step(strategy, model, keras.layers.Identity(), optimizer, global_batch_size=8,
                                 sharpness=sam.Sharpness(rho=0.5))
    rng = np.random.default_rng(1)
    for _ in range(3):
        images = tf.constant(rng.normal(size=(8, 6, 6, 2)), tf.float32)
        labels = tf.constant(rng.integers(0, 3, 8), tf.int32)
        data = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensors((images, labels)))
        step(*next(iter(data)))
    if local_ascent:
        sam.tf_perturbed_gradients = original
    return np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables])

one = train(tf.distribute.OneDeviceStrategy("/cpu:0"))
two = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
local = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), local_ascent=True)
print(json.dumps({"backend": keras.backend.backend(), "global": float(np.abs(one - two).max()),
                  "local": float(np.abs(one - local).max())}))
"""


@pytest.mark.slow
def test_two_replicas_take_the_one_device_sam_step():
    """Under MirroredStrategy over two CPU devices (no batch norm, whose
    statistics are per replica), three SAM steps equal one device's on the
    same global batch: the ascent uses the gradient summed over replicas.
    Ascending along each replica's own gradient moves the weights visibly."""
    report = backend_report(REPLICAS_SCRIPT, "tensorflow")
    assert report["global"] < 1e-5, report
    assert report["local"] > 1e-3, report
