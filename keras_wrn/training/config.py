"""The run configuration: one dataclass from the command line to the trainer,
the paper's recipes as presets, written into every run folder."""

import dataclasses
import json
import os

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import registry

# The official recipes (the paper's section 3 and its code); every value can
# be overridden. Boundary epochs count from 1: the rate changes when they begin.
PRESETS = {
    "cifar": dict(
        model="wrn-28-10", epochs=200, batch_size=128, learning_rate=0.1,
        lr_boundaries=(60, 120, 160), lr_factor=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, dropout_rate=0.0,
    ),
    "svhn": dict(
        model="wrn-16-8", epochs=160, batch_size=128, learning_rate=0.01,
        lr_boundaries=(80, 120), lr_factor=0.1, momentum=0.9, nesterov=True,
        weight_decay=5e-4, dropout_rate=0.4,
    ),
    # The standard ResNet recipe the paper used (torchvision's reference).
    "imagenet": dict(
        model="wrn-50-2-bottleneck", epochs=90, batch_size=256, learning_rate=0.1,
        lr_boundaries=(31, 61, 81), lr_factor=0.1, momentum=0.9, nesterov=False,
        weight_decay=1e-4, dropout_rate=0.0,
    ),
    # The embedded default: a WRN-16-4 on scikit-learn's 8x8 digits.
    "digits": dict(
        model="wrn-16-4", epochs=5, batch_size=64, learning_rate=0.1,
        lr_boundaries=(3, 5), lr_factor=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, dropout_rate=0.0,
    ),
    # Users' image folders: the CIFAR recipe, shorter.
    "folder": dict(
        model="wrn-16-4", epochs=30, batch_size=64, learning_rate=0.1,
        lr_boundaries=(10, 20, 25), lr_factor=0.2, momentum=0.9, nesterov=True,
        weight_decay=5e-4, dropout_rate=0.0,
    ),
}
DATASET_PRESETS = {"cifar10": "cifar", "cifar100": "cifar", "svhn": "svhn",
                   "imagenet": "imagenet", "digits": "digits"}
STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Fields that define what a run folder holds: a resumed run must match them
# (epochs may grow: the run is then trained longer, see `session`).
IDENTITY_FIELDS = ("dataset", "model", "batch_size", "seed", "smoke", "zca")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; `keras-wrn train` builds one.

    `lr_boundaries` are epochs (counted from 1) at whose start the rate is
    multiplied by `lr_factor`; `weight_decay` is Torch's coupled L2.
    """

    dataset: str = "digits"
    model: str = "wrn-16-4"
    run_dir: str = "runs/digits-wrn-16-4"
    data_dir: str | None = None
    download: bool = True  # download and prepare a missing tfds dataset (data.download)
    data_mirror: str | None = None  # an HTTP mirror of the datasets' original files
    epochs: int = 5
    batch_size: int = 64  # global, across all replicas
    learning_rate: float = 0.1
    lr_boundaries: tuple = (3, 5)
    lr_factor: float = 0.2
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    dropout_rate: float = 0.0
    zca: bool = False  # GCN + ZCA whitening (Table 4) instead of mean/std
    seed: int = 0
    strategy: str = "auto"
    tpu: str | None = None
    cpu_devices: int | None = None  # split the CPU for "mirrored" without GPUs
    precision: str = "float32"
    xla: bool | None = None  # None: on wherever XLA can run (strategies.resolve_xla)
    checkpoint_steps: int | None = None  # also checkpoint every N steps
    checkpoint_minutes: float = 10.0  # and at least this often
    smoke: bool = False  # 2 epochs of 3 steps, tiny batches: seconds
    resume: bool = True  # False refuses a run folder that already holds checkpoints
    deterministic: bool = True

    @classmethod
    def from_preset(cls, dataset, **overrides):
        """The paper's recipe for `dataset`, with `overrides` (None values
        are ignored, so CLI options left unset keep the preset), validated."""
        preset = PRESETS[DATASET_PRESETS.get(dataset, "folder")]
        values = {**preset, "dataset": dataset}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["model"] = registry.get_model_spec(values["model"]).name
        if overrides.get("run_dir") is None:
            tag = os.path.basename(os.path.normpath(dataset))
            values["run_dir"] = os.path.join("runs", f"{tag}-{values['model']}")
        return cls(**values).resolved()

    def resolved(self):
        """This config validated, with the model's canonical name (so that
        `WRN-16-4` resumes `wrn-16-4`) and the boundaries as a tuple; raises
        `InvalidArgumentError` naming the first bad value. Loads no backend."""
        config = dataclasses.replace(self, model=registry.get_model_spec(self.model).name,
                                     lr_boundaries=tuple(self.lr_boundaries))
        config.validate()
        return config

    def validate(self):
        """Raises `InvalidArgumentError` for the first impossible value;
        changes nothing."""
        def need(condition, message):
            if not condition:
                raise InvalidArgumentError(message)

        registry.get_model_spec(self.model)
        need(self.epochs >= 1, f"epochs must be >= 1. Received: epochs={self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={self.batch_size}")
        need(self.learning_rate > 0, f"learning_rate must be > 0. Received: learning_rate={self.learning_rate}")
        boundaries = tuple(self.lr_boundaries)
        need(all(isinstance(e, int) and not isinstance(e, bool) for e in boundaries)
             and all(e >= 2 for e in boundaries) and list(boundaries) == sorted(set(boundaries)),
             f"lr_boundaries must be increasing epoch numbers >= 2 (epochs count from 1; the rate drops when "
             f"each begins), e.g. 60,120,160. Received: lr_boundaries={','.join(map(str, boundaries))}")
        need(self.lr_factor > 0, f"lr_factor must be > 0. Received: lr_factor={self.lr_factor}")
        need(0.0 <= self.momentum < 1.0, f"momentum must be in [0, 1). Received: momentum={self.momentum}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0. Received: weight_decay={self.weight_decay}")
        need(self.strategy in STRATEGIES,
             f"strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={self.strategy!r}")
        need(self.precision in PRECISIONS,
             f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={self.precision!r}")
        need(0.0 <= self.dropout_rate < 1.0,
             f"dropout_rate must be in [0, 1). Received: dropout_rate={self.dropout_rate}")
        need(self.smoke or not self.cpu_devices or self.batch_size % self.cpu_devices == 0,
             f"The global batch size {self.batch_size} cannot be split evenly over {self.cpu_devices} "
             f"replicas (--cpu-devices); use a multiple of {self.cpu_devices}. Received: batch_size={self.batch_size}")
        need(self.checkpoint_steps is None or self.checkpoint_steps >= 1,
             f"checkpoint_steps must be >= 1. Received: checkpoint_steps={self.checkpoint_steps}")
        need(self.checkpoint_minutes > 0,
             f"checkpoint_minutes must be > 0. Received: checkpoint_minutes={self.checkpoint_minutes}")

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["lr_boundaries"] = list(self.lr_boundaries)
        return values

    @classmethod
    def from_dict(cls, values):
        known = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in values.items() if key in known}
        values["lr_boundaries"] = tuple(values.get("lr_boundaries", ()))
        return cls(**values)

    @classmethod
    def load(cls, path):
        """The config a run folder's `config.json` records."""
        with open(path) as handle:
            return cls.from_dict(json.load(handle)["config"])
