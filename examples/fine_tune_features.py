"""A WRN as a feature extractor, and weights that round-trip through a file.

    python examples/fine_tune_features.py
"""

import os
import tempfile

import keras
import numpy as np

import keras_wrn

# A small WRN-16-2 "trained" on 10 classes (random weights stand in here).
source = keras_wrn.WideResNet(16, 2, num_classes=10)
path = os.path.join(tempfile.mkdtemp(), "wrn-16-2.weights.h5")
source.save_weights(path)

# Reuse its features for a new 5-class task: load the weights without the top.
backbone = keras_wrn.WideResNet(16, 2, include_top=False, pooling="avg", weights=path)
backbone.trainable = False
inputs = keras.Input((32, 32, 3))
outputs = keras.layers.Dense(5, activation="softmax")(backbone(inputs, training=False))
model = keras.Model(inputs, outputs)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

rng = np.random.default_rng(0)
x, y = rng.normal(size=(64, 32, 32, 3)).astype("float32"), rng.integers(0, 5, 64)
model.fit(x, y, epochs=1, batch_size=32, verbose=2)
print("features:", backbone.output_shape, "trainable params of the new head:",
      keras_wrn.count_params(model))

# Asking for a classifier that does not fit the saved one fails before building.
try:
    keras_wrn.WideResNet(16, 2, num_classes=5, weights=path)
except ValueError as error:
    print("refused:", error)
