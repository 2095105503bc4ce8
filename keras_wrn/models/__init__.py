"""Pure Keras 3 model code: never imports TensorFlow, data, training or export."""

from keras_wrn.models.cifar import WideResNet
from keras_wrn.models.complexity import count_macs, count_params
from keras_wrn.models.imagenet import (
    ImageNetWideResNet,
    WideResNet18,
    WideResNet34,
    WideResNet50_2,
    WideResNet101_2,
)
from keras_wrn.models.imagenet_utils import decode_predictions, imagenet_class_names, preprocess_input
from keras_wrn.models.layers import StochasticDepth
