"""The model code is pure Keras 3: it builds and runs under JAX and PyTorch
without importing TensorFlow. Each backend runs in its own process."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras, keras_wrn
    from keras_wrn.models.arguments import default_input_shape
    results = {}
    for name in sys.argv[1:] or keras_wrn.list_models():
        spec = keras_wrn.get_model_spec(name)
        size = 32 if spec.family == "imagenet" else 8
        model = keras_wrn.get_model(
            name, num_classes=3, input_shape=default_input_shape(size))
        x = np.random.default_rng(0).normal(size=(2, size, size, 3)).astype("float32")
        out = keras.ops.convert_to_numpy(model(x, training=False))
        assert out.shape == (2, 3), (name, out.shape)
        features = model.get_layer("predictions").kernel.shape[0]
        results[name] = [keras_wrn.count_params(model), features]
    # A tiny training step, so gradients flow through every layer type.
    model = keras_wrn.WideResNet(10, 1, num_classes=3, dropout_rate=0.3,
                                 stochastic_depth_rate=0.5, classifier_activation=None)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(1).normal(size=(8, 32, 32, 3)).astype("float32")
    history = model.fit(x, np.arange(8) % 3, epochs=1, batch_size=4, verbose=0)
    # channels_first gives the same function (Keras kernels are layout-free).
    x = np.random.default_rng(2).normal(size=(2, 17, 17, 3)).astype("float32")
    last = keras_wrn.WideResNet(10, 2, num_classes=4, input_shape=(17, 17, 3))
    keras.config.set_image_data_format("channels_first")
    first = keras_wrn.WideResNet(10, 2, num_classes=4, input_shape=(3, 17, 17))
    keras.config.set_image_data_format("channels_last")
    first.set_weights(last.get_weights())
    layout_gap = float(np.abs(
        keras.ops.convert_to_numpy(first(x.transpose(0, 3, 1, 2), training=False))
        - keras.ops.convert_to_numpy(last(x, training=False))).max())
    print(json.dumps({
        "layout_gap": layout_gap,
        "backend": keras.backend.backend(),
        "tensorflow_imported": "tensorflow" in sys.modules,
        "loss": float(history.history["loss"][0]),
        "params": results,
    }))
    """
)


# Simulates a machine without TensorFlow (as the JAX GPU machines are): any
# import of it fails, so nothing on the path may need it.
NO_TENSORFLOW = textwrap.dedent(
    """
    import importlib.abc, sys

    class NoTensorFlow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] in ("tensorflow", "tensorflow_datasets"):
                raise ImportError(f"{name} is blocked in this test")

    sys.meta_path.insert(0, NoTensorFlow())
    """
)


# Both builders, tiny, under JAX with TensorFlow unimportable (as on the JAX
# GPU machines). The fast tier holds the same rule statically: an
# import-linter contract forbids the models any import of TensorFlow
# (tests/test_layers.py).
QUICK = NO_TENSORFLOW + textwrap.dedent(
    """
    import json
    import numpy as np, keras, keras_wrn
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    outputs = {}
    for model in (keras_wrn.WideResNet(10, 1, num_classes=3, block_type="B(1,3,1)", dropout_rate=0.3,
                                       stochastic_depth_rate=0.2),
                  keras_wrn.ImageNetWideResNet(block="basic", stage_blocks=(1, 1, 1, 1), width=0.25, num_classes=3,
                                               input_shape=(32, 32, 3))):
        outputs[model.name] = keras.ops.convert_to_numpy(model(x, training=False)).tolist()
    print(json.dumps({"backend": keras.backend.backend(), "outputs": outputs}))
    """
)


def run_backend(backend, names=()):
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True, env=env, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_report(report, backend, names):
    assert report["backend"] == backend
    assert not report["tensorflow_imported"]
    assert report["loss"] > 0
    assert report["layout_gap"] < 1e-5
    import keras_wrn

    # The same architecture on every backend: with the registry's classifier
    # width instead of 3 classes, each count is the pinned one.
    assert set(report["params"]) == set(names)
    for name, (params, features) in report["params"].items():
        spec = keras_wrn.get_model_spec(name)
        assert params + (spec.num_classes - 3) * (features + 1) == spec.params, name


@pytest.mark.slow
def test_both_builders_run_under_jax_with_tensorflow_unimportable():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install 'keras-wrn[jax]')")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-c", QUICK], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax" and len(report["outputs"]) == 2
    for name, probabilities in report["outputs"].items():
        np.testing.assert_allclose(np.sum(probabilities, axis=1), 1.0, rtol=1e-5, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_model_runs_without_tensorflow(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install 'keras-wrn[{backend}]')")
    import keras_wrn

    check_report(run_backend(backend), backend, keras_wrn.list_models())


@pytest.mark.slow
def test_training_recipe_runs_under_jax_from_in_memory_arrays():
    """TorchSGD, the step schedule and the augmentation layers, under JAX."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install 'keras-wrn[jax]')")
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "train_in_memory.py")
    code = NO_TENSORFLOW + textwrap.dedent(
        """
        import runpy
        runpy.run_path(sys.argv[1], run_name="__main__")
        print("tensorflow imported:", "tensorflow" in sys.modules)
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", code, example], capture_output=True,
                            text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tensorflow imported: False" in result.stdout
    accuracy = float(result.stdout.split("test accuracy ")[1].split()[0])
    assert accuracy >= 0.95
