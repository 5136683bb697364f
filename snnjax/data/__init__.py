"""Image-classification data: in-memory datasets and on-device (jittable) augmentation.

``import snnjax.data`` never imports tensorflow_datasets; only loading CIFAR does.
"""

from snnjax.data.augment import POLICIES, augment_batch, normalize
from snnjax.data.cifar import CIFAR_MEAN, CIFAR_STD
from snnjax.data.classification import DATASETS, load_classification
from snnjax.data.dataset import ClassificationData
from snnjax.data.tfds_source import DatasetNotPreparedError

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DATASETS",
    "POLICIES",
    "ClassificationData",
    "DatasetNotPreparedError",
    "augment_batch",
    "load_classification",
    "normalize",
]
