"""CIFAR-10/100 from prepared tensorflow-datasets ArrayRecord files, read without TensorFlow.

``tensorflow_datasets`` is imported inside the loader only, so ``import snnjax.data`` works on a
machine without it. Nothing is ever downloaded here: unprepared data raises
:class:`snnjax.data.tfds_source.DatasetNotPreparedError`, whose message says how to prepare it
(``snnjax.data.prepare``).
"""

from __future__ import annotations

import io

import numpy as np

from snnjax.checks import one_of
from snnjax.data.tfds_source import SYNTHETIC_ALTERNATIVE, open_prepared, parse_example
from snnjax.tasks.classification.data.dataset import ClassificationData

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
CIFAR_DATASETS = ("cifar10", "cifar100")
_RECORDS_PER_CHUNK = 10_000
_ALTERNATIVES = f"{SYNTHETIC_ALTERNATIVE} or --dataset=npz:PATH (your own arrays)"


def _decode_split(records, image_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Raw tf.Example records -> (uint8 [N, H, W, C], int32 [N]), read in chunks of _RECORDS_PER_CHUNK."""
    from PIL import Image

    n = len(records)
    images = np.empty((n, *image_shape), np.uint8)
    labels = np.empty((n,), np.int32)
    for start in range(0, n, _RECORDS_PER_CHUNK):
        chunk = records.__getitems__(list(range(start, min(start + _RECORDS_PER_CHUNK, n))))
        for i, record in enumerate(chunk, start):
            feature = parse_example(record)
            labels[i] = feature["label"].int64_list.value[0]
            with Image.open(io.BytesIO(feature["image"].bytes_list.value[0])) as image:
                images[i] = np.asarray(image).reshape(image_shape)
    return images, labels


def load_cifar(name: str, data_dir: str | None = None) -> ClassificationData:
    """Read prepared ``cifar10``/``cifar100`` (train and test splits) into uint8 NHWC arrays.

    ``data_dir=None`` means tfds' default (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
    Records are parsed as raw bytes (protobuf + PNG decode with Pillow), ~2-4 s for 60k images.
    """
    one_of(CIFAR_DATASETS)("name", name)
    sources, info = open_prepared(name, ["train", "test"], data_dir, alternatives=_ALTERNATIVES)
    image_shape = tuple(info.features["image"].shape)
    (x_train, y_train), (x_test, y_test) = (_decode_split(s, image_shape) for s in sources)
    return ClassificationData(
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=int(info.features["label"].num_classes),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        name=name,
        class_names=tuple(info.features["label"].names),
    )
