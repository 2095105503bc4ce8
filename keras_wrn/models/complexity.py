"""Parameter and multiply-accumulate counts, in the paper's terms.

- Parameters: trainable weights only (conv kernels, BN gamma/beta, dense
  kernel and bias); BN moving statistics are not counted, as in the paper's Table 4 (Zagoruyko & Komodakis 2016).
- MACs per image: the convolutions and the dense layer (what the paper's and
  torchvision's GFLOPs figures count); BN, ReLU, pooling and additions are
  ignored. One MAC is 2 FLOPs; a training step costs about 3x a forward pass.
"""

import math

from keras import layers

from keras_wrn.errors import InvalidArgumentError


def count_params(model):
    """Number of trainable parameters of `model`."""
    return int(sum(math.prod(w.shape) for w in model.trainable_weights))


def count_macs(model):
    """Multiply-accumulates of one forward pass of one image.

    Needs a model built for a fixed spatial size (no None dimensions).
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            out_shape = layer.output.shape
            if layer.data_format == "channels_last":
                spatial = out_shape[1:3]
            else:
                spatial = out_shape[2:4]
            if any(d is None for d in spatial):
                raise InvalidArgumentError(
                    f"count_macs needs a fixed input size; layer {layer.name} has "
                    f"output shape {out_shape}. Build the model with a full "
                    f"input_shape, e.g. (32, 32, 3)."
                )
            kernel = layer.kernel.shape  # (kh, kw, c_in / groups, c_out)
            total += math.prod(spatial) * math.prod(kernel)
        elif isinstance(layer, layers.Dense):
            total += math.prod(layer.kernel.shape)
    return int(total)
