"""Input data: datasets, tf.data pipelines and the paper's preprocessing.

`augment` is pure Keras; `datasets` and `pipeline` import TensorFlow (and
tensorflow-datasets) only inside the functions that need them.
"""

from keras_wrn.data.augment import RandomReflectCrop, ZCAWhitening, fit_zca, preprocessor
from keras_wrn.data.datasets import (
    DATASETS,
    DEFAULT_DATASET,
    DataNotFoundError,
    DatasetSpec,
    UnknownDatasetError,
    get_dataset_spec,
    list_datasets,
    load_split,
)
from keras_wrn.data.pipeline import batches, evaluation_batches, steps_per_epoch
