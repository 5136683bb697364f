"""A user's own image-classification arrays from one ``.npz`` file, validated.

Required keys: ``x_train``, ``x_test`` (uint8 ``[N, H, W, C]``, same ``H, W, C``) and ``y_train``,
``y_test`` (integer ``[N]``, labels in ``[0, num_classes)``). An optional scalar ``num_classes``
fixes the class count; otherwise it is ``max(label) + 1``. ``mean``/``std`` come from ``x_train``.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from snnjax.checks import check
from snnjax.tasks.classification.data.dataset import ClassificationData, channel_stats

REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


CHANNELS = (1, 3, 4)  # grey, RGB, RGBA


def _check_images(path: str, key: str, x: np.ndarray) -> None:
    """uint8 ``[N, H, W, C]``; channels-first arrays (``[N, C, H, W]`` with C in 1, 3, 4 and a last axis
    that is not) are refused rather than read as images C pixels high."""
    check(
        x.dtype == np.uint8 and x.ndim == 4 and x.shape[0] > 0,
        f"{path}: {key}",
        f"{x.dtype} {x.shape}",
        "a non-empty uint8 array [N, H, W, C] (NHWC)",
    )
    check(
        not (x.shape[1] in CHANNELS and x.shape[3] not in CHANNELS),
        f"{path}: {key}",
        f"shape {x.shape}, channels first (NCHW)",
        "NHWC [N, H, W, C]: convert with np.transpose(x, (0, 2, 3, 1))",
    )


def _check_labels(path: str, key: str, y: np.ndarray, n: int) -> None:
    check(
        np.issubdtype(y.dtype, np.integer) and y.shape == (n,),
        f"{path}: {key}",
        f"{y.dtype} {y.shape}",
        f"an integer array of shape ({n},) (one label per image)",
    )


def load_npz(path: str) -> ClassificationData:
    """Load and validate ``path``; errors name the offending key."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"npz dataset file {path!r} does not exist")
    check(zipfile.is_zipfile(path), "dataset", f"npz:{path}", "an .npz archive of arrays (np.savez), not another file")
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in REQUIRED_KEYS if k not in archive.files]
        check(
            not missing,
            f"{path}: keys",
            sorted(archive.files),
            f"all of {list(REQUIRED_KEYS)} (missing key(s) {missing})",
        )
        arrays = {k: archive[k] for k in REQUIRED_KEYS}
        declared = archive["num_classes"] if "num_classes" in archive.files else None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        _check_images(path, f"x_{split}", x)
        _check_labels(path, f"y_{split}", y, x.shape[0])
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    check(
        x_test.shape[1:] == x_train.shape[1:],
        f"{path}: x_test",
        f"{x_test.dtype} {x_test.shape}",
        f"a uint8 array [N, {', '.join(map(str, x_train.shape[1:]))}] (the [H, W, C] of x_train)",
    )
    if declared is None:
        num_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    else:
        check(
            declared.ndim == 0 and np.issubdtype(declared.dtype, np.integer),
            f"{path}: num_classes",
            f"{declared.dtype} {declared.shape}",
            "an integer scalar",
        )
        num_classes = int(declared)
    for key in ("y_train", "y_test"):
        y = arrays[key]
        check(
            y.min() >= 0 and y.max() < num_classes,
            f"{path}: {key}",
            f"labels in [{y.min()}, {y.max()}]",
            f"labels in [0, {num_classes})",
        )
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
