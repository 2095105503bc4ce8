"""The run configuration: one dataclass from the command line to the trainer,
the paper's recipes as presets, written into every run folder."""

import dataclasses
import json
import os

from keras_wrn.data import AUGMENTATIONS
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

# The recipes WRN users train with today, named after their source, on top
# of a dataset's preset (`--recipe`); every value can still be overridden.
RECIPES = {
    # The dataset's preset: the paper's recipe.
    "paper": {},
    # SAM (Foret et al., ICLR 2021; davda54/sam's WRN-28-10 CIFAR setup, which
    # SamsungLabs/ASAM follows): SAM (rho 0.05, DEFAULT_RHO), label smoothing
    # 0.1, cosine decay, 200 epochs, batch 128, lr 0.1, weight decay 5e-4, Cutout.
    "sam": dict(optimizer="sam", label_smoothing=0.1, schedule="cosine", epochs=200, batch_size=128,
                learning_rate=0.1, weight_decay=5e-4, augment="cutout"),
}
# ASAM (Kwon et al., ICML 2021; SamsungLabs/ASAM's CIFAR example): the same
# with adaptive sharpness (rho 0.5).
RECIPES["asam"] = {**RECIPES["sam"], "optimizer": "asam"}
OPTIMIZERS = ("sgd", "sam", "asam")
# SAM's and ASAM's usual neighbourhood sizes, when --sam-rho is not given.
DEFAULT_RHO = {"sgd": None, "sam": 0.05, "asam": 0.5}
SCHEDULES = ("step", "cosine")
STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Fields that define what a run folder holds: a resumed run must match them
# (epochs may grow: the run is then trained longer, see `session`).
IDENTITY_FIELDS = ("dataset", "model", "batch_size", "seed", "smoke", "zca", "optimizer", "schedule", "ema_decay",
                   "augment")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; `keras-wrn train` builds one.

    `lr_boundaries` are epochs (counted from 1) at whose start the rate is
    multiplied by `lr_factor` (`schedule="step"`); `schedule="cosine"` decays
    the rate to 0 over the run after `warmup_epochs` of linear warm-up;
    `weight_decay` is Torch's coupled L2. `optimizer` `"sam"`/`"asam"` takes
    SAM's two-pass step with radius `sam_rho`; `ema_decay` keeps an
    exponential moving average of the weights, evaluated every epoch;
    `augment` adds Cutout, RandAugment or AutoAugment to the dataset's augmentation.
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
    recipe: str = "paper"  # a name of RECIPES: what the values above came from
    optimizer: str = "sgd"  # a name of OPTIMIZERS
    sam_rho: float | None = None  # SAM's radius (None: DEFAULT_RHO)
    label_smoothing: float = 0.0
    schedule: str = "step"  # a name of SCHEDULES
    warmup_epochs: int = 0  # linear warm-up from 0 (cosine)
    ema_decay: float | None = None  # an EMA of the weights, e.g. 0.999
    augment: str = "paper"  # a name of AUGMENTATIONS
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
    def from_preset(cls, dataset, recipe="paper", **overrides):
        """The paper's recipe for `dataset`, or the `recipe` of `RECIPES` on
        top of it, with `overrides` (None values are ignored, so CLI options
        left unset keep the preset), validated."""
        if recipe not in RECIPES:
            raise InvalidArgumentError(f"Unknown recipe {recipe!r}; recipes: {', '.join(RECIPES)}. "
                                       f"Received: recipe={recipe!r}")
        preset = PRESETS[DATASET_PRESETS.get(dataset, "folder")]
        values = {**preset, **RECIPES[recipe], "dataset": dataset, "recipe": recipe}
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
        rho = self.sam_rho if self.sam_rho is not None or self.optimizer not in DEFAULT_RHO else \
            DEFAULT_RHO[self.optimizer]
        config = dataclasses.replace(self, model=registry.get_model_spec(self.model).name,
                                     lr_boundaries=tuple(self.lr_boundaries), sam_rho=rho)
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
        self._validate_recipe(need)

    def _validate_recipe(self, need):
        need(self.recipe in RECIPES, f"recipe must be one of {', '.join(RECIPES)}. Received: recipe={self.recipe!r}")
        need(self.optimizer in OPTIMIZERS,
             f"optimizer must be one of {', '.join(OPTIMIZERS)}. Received: optimizer={self.optimizer!r}")
        if self.optimizer == "sgd":
            need(self.sam_rho is None, f"sam_rho applies to --optimizer sam or asam, not sgd. Received: "
                                       f"sam_rho={self.sam_rho}")
        else:
            need(self.sam_rho is not None and self.sam_rho > 0,
                 f"sam_rho must be > 0. Received: sam_rho={self.sam_rho}")
            need(self.precision != "mixed_float16",
                 f"--optimizer {self.optimizer} runs in float32 or mixed_bfloat16 (a float16 loss scale would "
                 f"scale its ascent step too). Received: precision={self.precision!r}")
        need(0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing must be in [0, 1). Received: label_smoothing={self.label_smoothing}")
        need(self.schedule in SCHEDULES,
             f"schedule must be one of {', '.join(SCHEDULES)}. Received: schedule={self.schedule!r}")
        need(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs < self.epochs,
             f"warmup_epochs must be an integer in [0, epochs). Received: warmup_epochs={self.warmup_epochs}")
        need(self.warmup_epochs == 0 or self.schedule == "cosine",
             f"Warm-up comes with --schedule cosine (Keras' CosineDecay); the step schedule starts at its rate. "
             f"Received: warmup_epochs={self.warmup_epochs}, schedule={self.schedule!r}")
        need(self.ema_decay is None or 0.0 < self.ema_decay < 1.0,
             f"ema_decay must be in (0, 1), e.g. 0.999. Received: ema_decay={self.ema_decay}")
        need(self.augment in AUGMENTATIONS,
             f"augment must be one of {', '.join(AUGMENTATIONS)}. Received: augment={self.augment!r}")

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
