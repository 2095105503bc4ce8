"""PyTorch checkpoints -> keras_wrn models: torchvision and timm ResNets, the
paper's official functional CIFAR checkpoints and its WRN-50-2 export.

Files are read without executing code (safetensors, or torch's
`weights_only=True`); torch is needed only for `.pth` files and is imported
only then.
"""

from keras_wrn._lazy import lazy_exports

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "read_state_dict": "checkpoint",
    "convert_checkpoint": "convert",
    "CHECKPOINT_SOURCES": "sources",
    "ConversionError": "mapping",
    "detect_layout": "mapping",
    "to_keras_layer_weights": "mapping",
    "PretrainedWeightsError": "pretrained",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
