"""The run configuration: one dataclass from the command line to the trainer,
the paper's recipes as presets, written into every run folder."""

import dataclasses
import json
import os

from keras_wrn.errors import InvalidArgumentError
from keras_wrn.models import registry

# The official recipes (PAPER.md "Training recipes"); every value can be
# overridden. Boundary epochs count from 1: the rate changes when they begin.
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
# Fields that define what a run folder holds: a resumed run must match them.
IDENTITY_FIELDS = ("dataset", "model", "epochs", "batch_size", "seed", "smoke", "zca")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; `keras-wrn train` builds one.

    `lr_boundaries` are epochs (counted from 1) at whose start the rate is
    multiplied by `lr_factor`; `weight_decay` is Torch's coupled L2.
    """

    dataset: str = "digits"
    model: str = "wrn-16-4"
    run_dir: str = "runs/digits-wrn-16-4"
    data_dir: str | None = None
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
        are ignored, so CLI options left unset keep the preset)."""
        preset = PRESETS[DATASET_PRESETS.get(dataset, "folder")]
        values = {**preset, "dataset": dataset}
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["model"] = registry.get_model_spec(values["model"]).name
        if "run_dir" not in overrides or overrides["run_dir"] is None:
            tag = os.path.basename(os.path.normpath(dataset))
            values["run_dir"] = os.path.join("runs", f"{tag}-{values['model']}")
        values["lr_boundaries"] = tuple(values["lr_boundaries"])
        config = cls(**values)
        config.validate()
        return config

    def validate(self):
        def need(condition, message):
            if not condition:
                raise InvalidArgumentError(message)

        # Checked and normalised first, before anything loads a backend: a
        # run records the canonical name, so `WRN-16-4` resumes `wrn-16-4`.
        self.model = registry.get_model_spec(self.model).name
        need(self.epochs >= 1, f"epochs must be >= 1. Received: epochs={self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={self.batch_size}")
        need(self.learning_rate > 0, f"learning_rate must be > 0. Received: {self.learning_rate}")
        need(self.strategy in STRATEGIES,
             f"strategy must be one of {', '.join(STRATEGIES)}. Received: strategy={self.strategy!r}")
        need(self.precision in PRECISIONS,
             f"precision must be one of {', '.join(PRECISIONS)}. Received: precision={self.precision!r}")
        need(0.0 <= self.dropout_rate < 1.0, f"dropout_rate must be in [0, 1). Received: {self.dropout_rate}")
        need(self.smoke or not self.cpu_devices or self.batch_size % self.cpu_devices == 0,
             f"The global batch size {self.batch_size} cannot be split evenly over {self.cpu_devices} "
             f"replicas (--cpu-devices); use a multiple of {self.cpu_devices}. "
             f"Received: batch_size={self.batch_size}")
        need(self.checkpoint_steps is None or self.checkpoint_steps >= 1,
             f"checkpoint_steps must be >= 1. Received: {self.checkpoint_steps}")

    def to_dict(self):
        values = dataclasses.asdict(self)
        values["lr_boundaries"] = list(self.lr_boundaries)
        return values

    def save(self, path, extra=None):
        payload = {"config": self.to_dict(), **(extra or {})}
        from keras_wrn.training import run_folder

        run_folder.write_json(path, payload)

    @classmethod
    def load(cls, path):
        with open(path) as handle:
            values = json.load(handle)["config"]
        values["lr_boundaries"] = tuple(values["lr_boundaries"])
        return cls(**values)


def package_versions(*extra):
    """The versions that made an artifact: keras_wrn, Python, Keras and
    TensorFlow, and each installed package of `extra` (distribution names),
    read from package metadata without importing them."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from keras_wrn import __version__

    found = {"keras_wrn": __version__, "python": platform.python_version()}
    for names in (("keras",), ("tensorflow", "tensorflow-cpu"), *((name,) for name in extra)):
        for name in names:
            try:
                found[names[0].replace("-", "_")] = version(name)
                break
            except PackageNotFoundError:
                continue
    return found
