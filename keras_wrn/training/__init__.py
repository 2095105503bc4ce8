"""Training: the official optimiser and learning-rate schedules.

`optimizer` and `schedules` are pure Keras 3 (any backend); TensorFlow enters
only the input pipelines and the tf.distribute parts, imported where used.
"""

from keras_wrn.training.optimizer import TorchSGD
from keras_wrn.training.schedules import epoch_step_decay
