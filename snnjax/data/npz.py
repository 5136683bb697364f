"""A user's own image-classification arrays from one ``.npz`` file, validated.

Required keys: ``x_train``, ``x_test`` (uint8 ``[N, H, W, C]``, same ``H, W, C``) and ``y_train``,
``y_test`` (integer ``[N]``, labels in ``[0, num_classes)``). An optional scalar ``num_classes``
fixes the class count; otherwise it is ``max(label) + 1``. ``mean``/``std`` come from ``x_train``.
"""

from __future__ import annotations

import os

import numpy as np

from snnjax.data.dataset import ClassificationData, channel_stats

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _check_images(path: str, key: str, x: np.ndarray) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(
            f"{path}: {key!r} must be a non-empty uint8 array [N, H, W, C] (NHWC), got {x.dtype} {x.shape}"
        )


def _check_labels(path: str, key: str, y: np.ndarray, n: int) -> None:
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (n,):
        raise ValueError(
            f"{path}: {key!r} must be an integer array of shape ({n},) (one label per image), got {y.dtype} {y.shape}"
        )


def load_npz(path: str) -> ClassificationData:
    """Load and validate ``path``; errors name the offending key."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"npz dataset file {path!r} does not exist")
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in REQUIRED_KEYS if k not in archive.files]
        if missing:
            raise ValueError(
                f"{path}: missing key(s) {missing}; required {list(REQUIRED_KEYS)}, found {sorted(archive.files)}"
            )
        arrays = {k: archive[k] for k in REQUIRED_KEYS}
        declared = archive["num_classes"] if "num_classes" in archive.files else None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _check_images(path, f"x_{split}", x)
        _check_labels(path, f"y_{split}", y, x.shape[0])
    if arrays["x_test"].shape[1:] != arrays["x_train"].shape[1:]:
        raise ValueError(
            f"{path}: 'x_test' images are {arrays['x_test'].shape[1:]} but 'x_train' images are "
            f"{arrays['x_train'].shape[1:]}; both splits need the same [H, W, C]"
        )
    if declared is None:
        num_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    elif declared.ndim != 0 or not np.issubdtype(declared.dtype, np.integer):
        raise ValueError(f"{path}: 'num_classes' must be an integer scalar, got {declared!r}")
    else:
        num_classes = int(declared)
    for key in ("y_train", "y_test"):
        y = arrays[key]
        if y.min() < 0 or y.max() >= num_classes:
            raise ValueError(f"{path}: {key!r} labels must lie in [0, {num_classes}), got range [{y.min()}, {y.max()}]")
    mean, std = channel_stats(arrays["x_train"])
    return ClassificationData(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int32),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int32),
        num_classes=num_classes,
        mean=mean,
        std=std,
        name=f"npz:{path}",
    )
