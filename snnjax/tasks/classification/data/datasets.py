"""``load_classification``: one entry point for every image-classification dataset."""

from __future__ import annotations

from typing import Any

from snnjax.checks import InvalidValue, check
from snnjax.tasks.classification.data.cifar import CIFAR_DATASETS, load_cifar
from snnjax.tasks.classification.data.dataset import ClassificationData
from snnjax.tasks.classification.data.npz import load_npz
from snnjax.tasks.classification.data.synthetic import load_synthetic

DATASETS = (*CIFAR_DATASETS, "synthetic", "npz:PATH")


def load_classification(name: str, *, data_dir: str | None = None, **synthetic_options: Any) -> ClassificationData:
    """Load ``name`` into host memory as uint8 NHWC arrays.

    ``cifar10``/``cifar100``: prepared tfds ArrayRecord data under ``data_dir`` (read without
    TensorFlow; never downloads). ``synthetic``: generated, ``synthetic_options`` are
    :func:`snnjax.tasks.classification.data.synthetic.load_synthetic`'s. ``npz:PATH``: the user's arrays.
    """
    check(
        not synthetic_options or name == "synthetic",
        "options",
        sorted(synthetic_options),
        f"none for dataset {name!r} (only 'synthetic' takes options)",
    )
    if name in CIFAR_DATASETS:
        return load_cifar(name, data_dir)
    if name == "synthetic":
        return load_synthetic(**synthetic_options)
    if name.startswith("npz:") and len(name) > len("npz:"):
        return load_npz(name[len("npz:") :])
    raise InvalidValue("dataset", name, ", ".join(map(repr, DATASETS)))
