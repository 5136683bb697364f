"""CIFAR via tfds without TensorFlow: a tiny dataset in tfds' real prepared ArrayRecord layout."""

import sys

import numpy as np
import pytest

from snnjax.data import DatasetNotPreparedError
from snnjax.tasks.classification.data import CIFAR_MEAN, CIFAR_STD, load_classification

tfds = pytest.importorskip("tensorflow_datasets")
from PIL import Image  # noqa: E402
from tensorflow_datasets.image_classification import cifar  # noqa: E402

SIZES = {"train": 23, "test": 9}


def image_of(index: int) -> np.ndarray:
    """A distinct image per example: its index in pixel (0, 0, 0), a gradient elsewhere."""
    image = (np.arange(32 * 32 * 3).reshape(32, 32, 3) * (index + 1) % 256).astype(np.uint8)
    image[0, 0, 0] = index
    return image


def label_of(index: int, num_classes: int) -> int:
    return (index * 7) % num_classes


def write_tiny(builder_cls, data_dir) -> None:
    """Prepare ``builder_cls``'s dataset from our examples as ArrayRecord, like ``prepare`` does."""

    class Tiny(builder_cls, skip_registration=True):
        name = builder_cls.name

        def _split_generators(self, dl_manager):
            return {split: self._examples(split, n) for split, n in SIZES.items()}

        def _examples(self, split, n):
            num_classes = self.info.features["label"].num_classes
            offset = 0 if split == "train" else 100
            for i in range(n):
                record = {"id": f"{split}_{i:05d}", "image": Image.fromarray(image_of(offset + i))}
                record["label"] = label_of(offset + i, num_classes)
                if "coarse_label" in self.info.features:
                    record["coarse_label"] = 0
                yield i, record

    config = tfds.download.DownloadConfig(try_download_gcs=False)
    Tiny(data_dir=str(data_dir), file_format="array_record").download_and_prepare(download_config=config)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    write_tiny(cifar.Cifar10, path)
    write_tiny(cifar.Cifar100, path)
    return path


@pytest.mark.parametrize("name, num_classes", [("cifar10", 10), ("cifar100", 100)])
def test_reads_prepared_array_record_without_tensorflow(data_dir, name, num_classes):
    data = load_classification(name, data_dir=str(data_dir))
    assert data.name == name and data.num_classes == num_classes
    assert data.mean == CIFAR_MEAN and data.std == CIFAR_STD
    for split, offset in (("train", 0), ("test", 100)):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.shape == (SIZES[split], 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
        indices = x[:, 0, 0, 0].astype(int) - offset  # tfds shuffles: identify each example
        assert sorted(indices) == list(range(SIZES[split]))
        for image, label, i in zip(x, y, indices, strict=True):
            np.testing.assert_array_equal(image, image_of(offset + i))
            assert label == label_of(offset + i, num_classes)
    assert "tensorflow" not in sys.modules


def test_unprepared_data_fails_fast_with_instructions(tmp_path):
    with pytest.raises(DatasetNotPreparedError) as error:
        load_classification("cifar10", data_dir=str(tmp_path))
    message = str(error.value)
    assert "not prepared" in message and str(tmp_path) in message
    assert 'pip install -e ".[prepare]"' in message
    assert f"python -m snnjax.data.prepare cifar10 --data_dir {tmp_path}" in message
    assert "--dataset=synthetic" in message
    assert "tensorflow" not in sys.modules
