"""Train a WRN from in-memory arrays with `model.fit`, on any Keras backend.

    KERAS_BACKEND=jax python examples/train_in_memory.py

The official optimiser (TorchSGD: Nesterov, coupled L2 decay), the paper's
step schedule and the augmentation layers are pure Keras, so the same
recipe runs under JAX or PyTorch without TensorFlow. The data: scikit-learn's
handwritten digits (8x8, shipped with the package, no download).
"""

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import keras_wrn
from keras_wrn.data import preprocessor
from keras_wrn.training import TorchSGD, epoch_step_decay

digits = load_digits()
images = np.round(digits.images * 255 / 16).astype("float32")[..., None]
x_train, x_test, y_train, y_test = train_test_split(
    images, digits.target, test_size=0.25, random_state=0, stratify=digits.target)

keras.utils.set_random_seed(0)
batch_size, epochs = 64, 5  # the digits preset: 5 epochs, the rate x0.2 at epochs 3 and 5
steps_per_epoch = -(-len(x_train) // batch_size)  # fit() keeps the partial batch
net = keras_wrn.get_model("wrn-16-4", num_classes=10, input_shape=(8, 8, 1),
                          classifier_activation=None)
# Pixels / 255, then (for CIFAR) flip and reflect-pad crop: training only.
model = keras.Sequential([keras.Input((8, 8, 1)), preprocessor((0.0,), (255.0,)), net])
model.compile(
    optimizer=TorchSGD(epoch_step_decay(0.1, (3, 5), 0.2, steps_per_epoch),
                       momentum=0.9, nesterov=True, l2_weight_decay=5e-4),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2, shuffle=True)
loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
print(f"backend {keras.backend.backend()}: test accuracy {accuracy:.4f}")
