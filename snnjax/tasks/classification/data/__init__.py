"""Image-classification data: in-memory datasets (CIFAR, synthetic, npz) and on-device augmentation.

Importing this package never imports tensorflow_datasets; only loading CIFAR does.
"""

from snnjax.tasks.classification.data.augment import POLICIES, augment_batch, normalize
from snnjax.tasks.classification.data.cifar import CIFAR_MEAN, CIFAR_STD
from snnjax.tasks.classification.data.dataset import ClassificationData
from snnjax.tasks.classification.data.datasets import DATASETS, load_classification

__all__ = [
    "CIFAR_MEAN",
    "CIFAR_STD",
    "DATASETS",
    "POLICIES",
    "ClassificationData",
    "augment_batch",
    "load_classification",
    "normalize",
]
