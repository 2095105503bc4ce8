"""Datasets: the paper's (via tensorflow-datasets), image folders, and the
embedded default (scikit-learn's handwritten digits, no download).

Every source yields `(image, label)` pairs: uint8 images `(H, W, C)` on the
0-255 scale and int32 labels; normalisation and augmentation are applied by
`keras_wrn.data.augment.preprocessor` inside the training step. TensorFlow
is imported inside the functions that build tf.data pipelines.
"""

import contextlib
import dataclasses
import functools
import os
from typing import Callable

from keras_wrn.errors import InvalidArgumentError, MissingFileError

# 0-255 scale: the official code's CIFAR statistics (CIFAR-10 and -100), torchvision's ImageNet ones.
from keras_wrn.files import sha256_file
from keras_wrn.models.weights import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD

UNIT_SCALE = ((0.0,), (255.0,))  # pixels / 255 (SVHN, digits, folders)
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras' folder loader reads


class DataNotFoundError(MissingFileError):
    """The requested data is not on this machine; the message says how to get it."""


class UnknownDatasetError(InvalidArgumentError, KeyError):
    """A dataset name that is neither a known dataset nor an existing folder."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A dataset the trainer knows: where it comes from and how to prepare it."""

    name: str
    num_classes: int
    image_size: int
    channels: int
    train_split: str
    test_split: str
    mean: tuple
    std: tuple
    flip: bool = False
    crop_padding: int = 0
    tfds_name: str | None = None
    manual_download: bool = False
    prepared_bytes: int = 0  # the prepared tfds dataset (the TFDS catalog's "Dataset size")
    description: str = ""

    def normalization(self):
        """Per-channel (mean, std) tuples of length `channels`."""
        mean = self.mean * self.channels if len(self.mean) == 1 else self.mean
        std = self.std * self.channels if len(self.std) == 1 else self.std
        return tuple(mean), tuple(std)


DATASETS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "cifar10", 10, 32, 3, "train", "test", CIFAR_MEAN, CIFAR_STD,
            flip=True, crop_padding=4, tfds_name="cifar10", prepared_bytes=int(132.40 * 2**20),
            description="CIFAR-10, mean/std, flip + 4-pixel reflect-padded crop",
        ),
        DatasetSpec(
            "cifar100", 100, 32, 3, "train", "test", CIFAR_MEAN, CIFAR_STD,
            flip=True, crop_padding=4, tfds_name="cifar100", prepared_bytes=int(132.03 * 2**20),
            description="CIFAR-100, as CIFAR-10",
        ),
        DatasetSpec(
            "svhn", 10, 32, 3, "train+extra", "test", *UNIT_SCALE,
            tfds_name="svhn_cropped", prepared_bytes=int(1.09 * 2**30),
            description="SVHN train + extra (604k images), pixels / 255, no augmentation",
        ),
        DatasetSpec(
            "imagenet", 1000, 224, 3, "train", "validation", IMAGENET_MEAN, IMAGENET_STD,
            tfds_name="imagenet2012", manual_download=True,
            description="ImageNet-1k: random-resized crop + flip; resize 256, centre crop 224",
        ),
        DatasetSpec(
            "digits", 10, 8, 1, "train", "test", *UNIT_SCALE,
            description="scikit-learn's 1,797 handwritten 8x8 digits (embedded, no download)",
        ),
    )
}
def get_dataset_spec(name, data_dir=None):
    """The spec of a named dataset, or of an image folder (a path with
    `train/` and `test/` sub-folders of one folder per class)."""
    if name in DATASETS:
        return DATASETS[name]
    if os.path.isdir(name):
        return folder_spec(name)
    if os.sep in name or name.startswith((".", "~")) or (os.altsep and os.altsep in name):
        raise DataNotFoundError(
            f"No such folder: {name!r}. As --dataset, a path must be an image folder with train/ and test/ "
            f"sub-folders (one folder per class). Received: dataset={name!r}")
    raise UnknownDatasetError(
        f"Unknown dataset {name!r}: use one of {', '.join(DATASETS)} or the path of an "
        f"image folder with train/ and test/ sub-folders (one folder per class). "
        f"Received: dataset={name!r}"
    )


# -- image folders --------------------------------------------------------------------


def _class_names(folder):
    return sorted(
        entry for entry in os.listdir(folder) if os.path.isdir(os.path.join(folder, entry))
    )


def folder_spec(path, image_size=None):
    splits = {split: os.path.join(path, split) for split in ("train", "test")}
    missing = [s for s, p in splits.items() if not os.path.isdir(p)]
    if missing:
        raise DataNotFoundError(
            f"The image folder {path!r} needs train/ and test/ sub-folders, each with one "
            f"folder per class; {', '.join(missing)}/ is missing."
        )
    classes = _class_names(splits["train"])
    if len(classes) < 2 or classes != _class_names(splits["test"]):
        raise DataNotFoundError(
            f"The image folder {path!r} must have the same class folders (at least two) "
            f"in train/ and test/. Found train: {classes}, test: {_class_names(splits['test'])}."
        )
    for split, split_dir in splits.items():
        for class_name in classes:
            folder = os.path.join(split_dir, class_name)
            if not any(entry.lower().endswith(IMAGE_SUFFIXES) for entry in os.listdir(folder)):
                raise InvalidArgumentError(
                    f"The class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)}): every class needs "
                    f"images in train/ and in test/. Add some, or remove the class from both splits.")
    size = image_size or _first_image_size(splits["train"], classes[0])
    return DatasetSpec(
        name=os.path.abspath(path), num_classes=len(classes), image_size=size, channels=3,
        train_split="train", test_split="test", mean=UNIT_SCALE[0], std=UNIT_SCALE[1],
        flip=True, crop_padding=max(1, size // 8),
        description=f"image folder {path} ({len(classes)} classes)",
    )


def check_image_folder(path):
    """Decodes every file of an image folder's train/ and test/ class
    folders, so a damaged or non-image file is reported by its path before
    a run writes anything (TensorFlow's loader would fail mid-run, without
    the file's name). JPEGs decode at reduced scale: quick, and a truncated
    one still fails. Returns the number of images."""
    from PIL import Image

    count = 0
    for split in ("train", "test"):
        for class_name in _class_names(os.path.join(path, split)):
            folder = os.path.join(path, split, class_name)
            for entry in sorted(os.listdir(folder)):
                file = os.path.join(folder, entry)
                if os.path.isdir(file):
                    continue
                if not entry.lower().endswith(IMAGE_SUFFIXES):
                    raise InvalidArgumentError(
                        f"{file} is not an image file ({', '.join(IMAGE_SUFFIXES)}); remove it from the "
                        f"image folder {path}.")
                try:
                    with Image.open(file) as image:
                        image.draft("RGB", (1, 1))
                        image.load()
                except (OSError, SyntaxError, ValueError) as error:
                    raise InvalidArgumentError(
                        f"{file} is damaged or not an image ({error}); replace or remove it.") from None
                count += 1
    return count


def _first_image_size(split_dir, class_name):
    from PIL import Image  # a dependency of matplotlib and keras' image utils

    folder = os.path.join(split_dir, class_name)
    for entry in sorted(os.listdir(folder)):
        try:
            with Image.open(os.path.join(folder, entry)) as image:
                return max(image.size)
        except OSError:
            continue
    raise DataNotFoundError(f"No readable image in {folder!r}.")


# -- loading ---------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """One split, ready for `pipeline`: a tf.data source and its size."""

    spec: DatasetSpec
    source: object  # tf.data.Dataset of (uint8 image, int32 label)
    num_examples: int
    class_names: list
    training: bool

    def images(self):
        """Every image of the split, uint8 `(N, H, W, C)` in its order (the ZCA fit)."""
        import numpy as np

        return np.concatenate([x for x, _ in self.source.batch(4096).as_numpy_iterator()])


ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")


@functools.lru_cache(maxsize=8)
def _archive_digest(path, size, mtime_ns):
    """The first 16 hex digits of the archive's SHA-256, hashed once per
    process and file version (a run reads its train and test splits, each
    through `unpacked`)."""
    return sha256_file(path)[:16]


def _archive_cache(data_dir):
    """`(name, folder)`: an archive's name without its suffix and the cache
    folder it unpacks to, named by its content (`NAME-SHA256[:16]`)."""
    from keras_wrn.cache import cache_dir

    if not os.path.isfile(data_dir):
        raise DataNotFoundError(f"No such archive: {data_dir!r}. Pass a folder or a .tar.gz of train/ and test/.")
    name = os.path.basename(data_dir)
    for suffix in ARCHIVE_SUFFIXES:
        name = name.removesuffix(suffix)
    stat = os.stat(data_dir)
    digest = _archive_digest(os.path.abspath(data_dir), stat.st_size, stat.st_mtime_ns)
    return name, cache_dir("data", f"{name}-{digest}")


def unpacked(data_dir):
    """`data_dir` itself, or, for an archive (`.tar.gz`, `.tgz`, `.tar`) of a
    dataset stored as image files (e.g. `cifar10-jpeg.tar.gz`), the folder it
    unpacks to: once per archive content, into keras-wrn's cache
    (`KERAS_WRN_CACHE/data/NAME-SHA256[:16]`), atomically (a killed unpack
    leaves no folder that looks complete, and its debris is removed by the
    next unpack). An archive holding one top folder gives that folder."""
    if not data_dir or not str(data_dir).endswith(ARCHIVE_SUFFIXES):
        return data_dir
    import tarfile

    from keras_wrn import files

    name, target = _archive_cache(data_dir)
    if not os.path.isdir(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        files.remove_stale(os.path.dirname(target))  # what a killed unpack left
        tmp = files.temporary_folder(os.path.dirname(target), name)
        try:
            with tarfile.open(data_dir) as archive:
                archive.extractall(tmp, filter="data")
            try:
                os.rename(tmp, target)
            except OSError:  # another process unpacked it first
                pass
        except (tarfile.TarError, EOFError, OSError) as error:
            raise InvalidArgumentError(
                f"Cannot unpack {data_dir!r} into {os.path.dirname(target)} ({type(error).__name__}: "
                f"{str(error)[:200]}). A damaged or truncated archive: copy it again; a full disk: free space "
                f"or set KERAS_WRN_CACHE; or pass the unpacked folder."
            ) from None
        finally:
            files.remove(tmp)  # renamed away, or half unpacked
    entries = os.listdir(target)
    if len(entries) == 1 and os.path.isdir(os.path.join(target, entries[0])):
        return os.path.join(target, entries[0])
    return target


def load_split(spec, split, *, data_dir=None, training=False):
    """Loads `split` ("train"/"test" or the spec's split names) as a `Split`.
    `data_dir` may be an archive of image folders (`unpacked`).

    Raises DataNotFoundError within seconds when the data is not prepared,
    saying where it looked and how to get it; never downloads
    (`data.download.prepare` does).
    """
    data_dir = unpacked(data_dir)
    if not from_tfds(spec, data_dir) and spec.tfds_name:
        return _load_folder(spec, split, data_dir=data_dir, training=training)
    loader: Callable = (
        _load_digits if spec.name == "digits"
        else _load_tfds if spec.tfds_name
        else _load_folder
    )
    tfds_split = {"train": spec.train_split, "test": spec.test_split}.get(split, split)
    return loader(spec, tfds_split, data_dir=data_dir, training=training)


def from_tfds(spec, data_dir=None):
    """Whether `spec`'s splits come from tensorflow-datasets (and not from
    the digits, an image folder, or a copy of the dataset as image files in
    `data_dir`)."""
    data_dir = unpacked(data_dir)
    return bool(spec.tfds_name) and not (data_dir and is_image_folder_copy(spec, data_dir))


def is_image_folder_copy(spec, root):
    """Whether `root` holds the dataset as image files, `train/` and `test/`
    with one folder per class (e.g. a JPEG copy of CIFAR-10): `--data-dir`
    may name such a copy instead of a tensorflow-datasets folder. The class
    folders sort into label order (CIFAR's labels are alphabetical)."""
    splits = [os.path.join(root, split) for split in ("train", "test")]
    return all(os.path.isdir(path) and len(_class_names(path)) == spec.num_classes for path in splits)


def read_image_arrays(root, split, image_size=None):
    """`(images, labels)` as numpy arrays, uint8 `(N, H, W, C)` and int32
    `(N,)`, from `root/split/<class>/*` (class folders in sorted order give
    the labels), decoded with Pillow: no TensorFlow, for in-memory training
    on any backend. Images are converted to RGB and, where `image_size` is
    given and differs, resized to it."""
    import numpy as np
    from PIL import Image

    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"No {split}/ folder in {root!r}: expected {root}/{split}/<class>/<image>.")
    images, labels = [], []
    for label, name in enumerate(_class_names(folder)):
        class_dir = os.path.join(folder, name)
        for entry in sorted(os.listdir(class_dir)):
            if not entry.lower().endswith(IMAGE_SUFFIXES):
                continue
            try:
                with Image.open(os.path.join(class_dir, entry)) as image:
                    image = image.convert("RGB")
                    if image_size and image.size != (image_size, image_size):
                        image = image.resize((image_size, image_size), Image.BILINEAR)
                    images.append(np.asarray(image, dtype=np.uint8))
            except (OSError, SyntaxError, ValueError) as error:
                raise InvalidArgumentError(
                    f"{os.path.join(class_dir, entry)} is damaged or not an image ({error}); replace or "
                    f"remove it.") from None
            labels.append(label)
    if not images:
        raise DataNotFoundError(f"No images in {folder!r}.")
    return np.stack(images), np.asarray(labels, dtype=np.int32)


def digits_arrays():
    """scikit-learn's 8x8 digits as uint8 `(N, 8, 8, 1)` pixels 0-255 and int32
    labels, split 75/25 (stratified, fixed seed): `(x_train, y_train, x_test, y_test)`."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype("uint8")[..., None]
    labels = digits.target.astype("int32")
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.25, random_state=0, stratify=labels
    )
    return x_train, y_train, x_test, y_test


def in_memory_arrays(spec, data_dir=None):
    """`(x_train, y_train, x_test, y_test, class_names)` as numpy arrays, read
    without TensorFlow (the Keras `fit` route on JAX and PyTorch): the
    digits, an image folder, or a dataset stored as image files in
    `data_dir` (`train/` and `test/`, a folder per class, e.g. CIFAR-10, or
    an archive of them). An archive's images are decoded once and kept as
    arrays beside its unpacked folder in the cache (`NAME-SHA256[:16].decoded-
    SIZE.npz`): named by the archive's content, it never goes stale."""
    import numpy as np

    archive = bool(data_dir) and str(data_dir).endswith(ARCHIVE_SUFFIXES)
    decoded = f"{_archive_cache(data_dir)[1]}.decoded-{spec.image_size}.npz" if archive else None
    data_dir = unpacked(data_dir)
    if decoded and os.path.exists(decoded):
        with np.load(decoded) as stored:
            return (stored["x_train"], stored["y_train"], stored["x_test"], stored["y_test"],
                    [str(name) for name in stored["class_names"]])
    if spec.name == "digits":
        return (*digits_arrays(), [str(i) for i in range(10)])
    if spec.tfds_name is None:
        root = spec.name
    elif data_dir and is_image_folder_copy(spec, data_dir):
        root = data_dir
    else:
        raise DataNotFoundError(
            f"Without TensorFlow, {spec.name} is read from image files: pass --data-dir with train/ and test/ "
            f"folders of one folder per class (as the CIFAR-10 JPEG copy), or train with "
            f"KERAS_BACKEND=tensorflow, which reads tensorflow-datasets.")
    x_train, y_train = read_image_arrays(root, "train", spec.image_size)
    x_test, y_test = read_image_arrays(root, "test", spec.image_size)
    class_names = _class_names(os.path.join(root, "train"))
    if decoded:
        from keras_wrn import files

        with contextlib.suppress(OSError), files.atomic_path(decoded) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                     class_names=np.array(class_names))
    return x_train, y_train, x_test, y_test, class_names


def _load_digits(spec, split, *, data_dir=None, training=False):
    import tensorflow as tf

    x_train, y_train, x_test, y_test = digits_arrays()
    x, y = (x_train, y_train) if split == spec.train_split else (x_test, y_test)
    return Split(
        spec, tf.data.Dataset.from_tensor_slices((x, y)), len(y),
        [str(i) for i in range(10)], training,
    )


def missing_tfds_message(spec, data_dir):
    """What a missing tfds dataset says: where it looked and how to get it."""
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    if spec.manual_download:
        how = (
            f"ImageNet needs a manual download: place ILSVRC2012_img_train.tar and "
            f"ILSVRC2012_img_val.tar in {where}/downloads/manual/, then run "
            f"`python -c \"import tensorflow_datasets as tfds; "
            f"tfds.builder('{spec.tfds_name}', data_dir='{where}').download_and_prepare()\"`"
        )
        return f"Dataset {spec.name} ({spec.tfds_name}) was not found in {where}. {how}."
    return (f"Dataset {spec.name} ({spec.tfds_name}) was not found in {where}. Run `keras-wrn prepare {spec.name}` "
            f"to download and prepare it (`keras-wrn train` does so itself unless --no-download); on a machine "
            f"without network, prepare it on one with network and copy {spec.tfds_name}/ here, or pass --data-dir "
            f"with the folder that holds it.")


def _load_tfds(spec, split, *, data_dir=None, training=False):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(spec.tfds_name, data_dir=data_dir)
    read_config = tfds.ReadConfig(shuffle_seed=0, try_autocache=False)
    try:
        source = builder.as_dataset(
            split=split, as_supervised=True, shuffle_files=training, read_config=read_config
        )
    except AssertionError as error:  # tfds' "could not find data" (download=False)
        raise DataNotFoundError(missing_tfds_message(spec, data_dir)) from error
    split_info = builder.info.splits
    try:
        num_examples = split_info[split].num_examples
    except (KeyError, ValueError):
        num_examples = None  # tfds.testing.mock_data has no split info
    if not num_examples:
        num_examples = int(source.reduce(0, lambda count, _: count + 1))
    label_feature = builder.info.features["label"]
    source = source.map(
        lambda image, label: (image, tf.cast(label, tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return Split(spec, source, num_examples, list(label_feature.names), training)


def _load_folder(spec, split, *, data_dir=None, training=False):
    import keras
    import tensorflow as tf

    folder = os.path.join(data_dir if spec.tfds_name else spec.name, split)
    source = keras.utils.image_dataset_from_directory(
        folder, labels="inferred", label_mode="int", batch_size=None,
        image_size=(spec.image_size, spec.image_size), shuffle=False,
        crop_to_aspect_ratio=True, verbose=False,
    )
    class_names = list(source.class_names)
    source = source.map(
        lambda image, label: (tf.cast(tf.round(image), tf.uint8), tf.cast(label, tf.int32))
    )
    return Split(spec, source, int(source.cardinality()), class_names, training)
