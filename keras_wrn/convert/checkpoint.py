"""Reading PyTorch checkpoints without executing code from them.

`.safetensors` files are read with the `safetensors` package (no torch
needed); `.pth` / `.pt` / `.bin` files with `torch.load(weights_only=True)`,
which refuses anything but tensors and plain containers. Either way the
result is a flat `{name: float32 numpy array}`.
"""

import os

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models.weights_io import CHECKPOINT_SUFFIXES

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = tuple(s for s in CHECKPOINT_SUFFIXES if s not in SAFETENSORS_SUFFIXES)
# Containers that training scripts wrap state dicts in: torchvision/timm
# "state_dict" or "model", the official CIFAR code's "params", "net" (many
# robustness repositories); the EMA weights of the semi-supervised code
# (FixMatch's PyTorch port: "ema_state_dict"; TorchSSL and USB: "ema_model").
CONTAINER_KEYS = ("state_dict", "model", "params", "model_state_dict", "net")
EMA_KEYS = ("ema_state_dict", "ema_model", "ema")
PREFIXES = ("module.", "model.")
TORCH_INSTALL = "pip install torch==2.14.1 torchvision==0.29.1 (CPU wheels; or the build for your machine)"


class CheckpointError(InvalidArgumentError):
    """A checkpoint cannot be read or converted; the message says why."""


def _unwrap(state, keys=CONTAINER_KEYS):
    while isinstance(state, dict):
        inner = next((state[k] for k in keys if isinstance(state.get(k), dict)), None)
        if inner is None or any(hasattr(v, "shape") for v in state.values()):
            break
        state = inner
        keys = CONTAINER_KEYS
    return state


def _select_ema(loaded, path):
    """The EMA weights of a checkpoint that holds them beside the raw ones."""
    if isinstance(loaded, dict):
        for key in EMA_KEYS:
            if isinstance(loaded.get(key), dict):
                return loaded[key]
    top = ", ".join(sorted(map(str, loaded))[:10]) if isinstance(loaded, dict) else type(loaded).__name__
    raise CheckpointError(
        f"{path!r} holds no EMA weights (none of {', '.join(EMA_KEYS)}; its top-level keys: {top}). Convert it "
        f"without --ema.")


def read_state_dict(path, *, ema=False):
    """`{tensor name: float32 numpy array}` from a PyTorch checkpoint, with
    wrapping containers and DataParallel's `module.` prefix removed and
    BatchNorm's `num_batches_tracked` counters dropped; with `ema`, the EMA
    weights the semi-supervised codebases save beside the raw ones."""
    import numpy as np

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"The checkpoint {path!r} does not exist.")
    if path.endswith(SAFETENSORS_SUFFIXES):
        try:
            from safetensors.numpy import load_file
        except ImportError:
            raise CheckpointError("Reading .safetensors files needs the safetensors package: "
                                  "pip install safetensors") from None
        try:
            state = load_file(path)
        except Exception as error:  # safetensors raises its own error types
            raise CheckpointError(f"{path!r} is not a readable safetensors file: {error}") from None
        if ema:
            raise CheckpointError(f"{path!r} is a safetensors file of one set of weights; convert it without --ema.")
    elif path.endswith(TORCH_SUFFIXES):
        try:
            import torch
        except ImportError:
            raise CheckpointError(
                f"Reading the PyTorch checkpoint {path!r} needs torch ({TORCH_INSTALL}); a "
                f".safetensors file needs only the safetensors package."
            ) from None
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle errors, or objects weights_only refuses
            raise CheckpointError(
                f"{path!r} could not be read as a weights-only PyTorch checkpoint (keras-wrn never "
                f"unpickles code from a file): {str(error).splitlines()[0]}"
            ) from None
        selected = _unwrap(_select_ema(loaded, path)) if ema else _unwrap(loaded)
        state = {key: value.detach().cpu().float().numpy() if value.is_floating_point()
                 else value.detach().cpu().numpy()
                 for key, value in _flatten(selected).items() if isinstance(value, torch.Tensor)}
    else:
        raise CheckpointError(f"{path!r} is not a checkpoint keras-wrn reads: use one of {CHECKPOINT_SUFFIXES}.")
    state = _unwrap(state)
    cleaned = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for prefix in PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        cleaned[key] = np.asarray(value, np.float32)
    if not cleaned:
        raise CheckpointError(f"{path!r} holds no tensors.")
    return cleaned


def _flatten(state, prefix=""):
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
