"""PyTorch checkpoints -> keras_wrn models: torchvision and timm ResNets, the
paper's official functional CIFAR checkpoints and its WRN-50-2 export.

Files are read without executing code (safetensors, or torch's
`weights_only=True`); torch is needed only for `.pth` files and is imported
only then.
"""

from keras_wrn.convert.checkpoint import CheckpointError, read_state_dict
from keras_wrn.convert.convert import convert_checkpoint
from keras_wrn.convert.mapping import ConversionError, detect_layout, to_keras_layer_weights
from keras_wrn.convert.pretrained import PRETRAINED, PretrainedWeightsError, PublishedWeights
