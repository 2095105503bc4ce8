"""Input data: datasets, their download, tf.data pipelines and the paper's
preprocessing.

`augment`, `autoaugment` and `feeds` (what Keras `fit` reads) are Keras
and numpy; `datasets`, `download`, `pipeline` and the streamed feeds import
TensorFlow (and tensorflow-datasets) only inside the functions that need them.
"""

from keras_wrn._lazy import lazy_exports

# `preprocessor(augment=...)`: the paper's flip and crop alone, then Cutout,
# RandAugment first, or AutoAugment's policy between them and Cutout
# (Keras-free, for the config and the command line).
AUGMENTATIONS = ("paper", "cutout", "randaugment", "autoaugment")

_EXPORTS = {
    "AutoAugment": "autoaugment",
    "RandomReflectCrop": "augment",
    "Cutout": "augment",
    "ZCAWhitening": "augment",
    "fit_zca": "augment",
    "preprocessor": "augment",
    "DATASETS": "datasets",
    "DataNotFoundError": "datasets",
    "DatasetSpec": "datasets",
    "UnknownDatasetError": "datasets",
    "check_image_folder": "datasets",
    "in_memory_arrays": "datasets",
    "get_dataset_spec": "datasets",
    "load_split": "datasets",
    "unpacked": "datasets",
    "from_tfds": "datasets",
    "DownloadError": "download",
    "MIRROR_ENV": "download",
    "prepare": "download",
    "EvaluationBatches": "feeds",
    "ShuffledBatches": "feeds",
    "StreamedBatches": "feeds",
    "StreamedEvaluation": "feeds",
    "streams": "feeds",
    "batches": "pipeline",
    "evaluation_batches": "pipeline",
    "steps_per_epoch": "pipeline",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
