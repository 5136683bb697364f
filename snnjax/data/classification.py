"""``load_classification``: one entry point for every image-classification dataset."""

from __future__ import annotations

from typing import Any

from snnjax.data.cifar import CIFAR_DATASETS, load_cifar
from snnjax.data.dataset import ClassificationData
from snnjax.data.npz import load_npz
from snnjax.data.synthetic import load_synthetic

DATASETS = (*CIFAR_DATASETS, "synthetic", "npz:PATH")


def load_classification(name: str, *, data_dir: str | None = None, **synthetic_options: Any) -> ClassificationData:
    """Load ``name`` into host memory as uint8 NHWC arrays.

    ``cifar10``/``cifar100``: prepared tfds ArrayRecord data under ``data_dir`` (read without
    TensorFlow; never downloads). ``synthetic``: generated, ``synthetic_options`` are
    :func:`snnjax.data.synthetic.load_synthetic`'s. ``npz:PATH``: the user's arrays.
    """
    if synthetic_options and name != "synthetic":
        raise ValueError(f"options {sorted(synthetic_options)} only apply to dataset 'synthetic', got {name!r}")
    if name in CIFAR_DATASETS:
        return load_cifar(name, data_dir)
    if name == "synthetic":
        return load_synthetic(**synthetic_options)
    if name.startswith("npz:") and len(name) > len("npz:"):
        return load_npz(name[len("npz:") :])
    raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
