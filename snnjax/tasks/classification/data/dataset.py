"""The in-memory image-classification dataset every loader returns."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class ClassificationData:
    """Train and test splits held in host memory.

    ``x_*``: uint8 ``[N, H, W, C]`` (NHWC); ``y_*``: int32 ``[N]`` in ``[0, num_classes)``.
    ``mean``/``std``: per-channel statistics in [0, 1] units, for ``(x / 255 - mean) / std``.
    ``class_names``: one per class, or None where the dataset names none (synthetic, npz).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    class_names: tuple[str, ...] | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)``."""
        return tuple(self.x_train.shape[1:])


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 ``[N, H, W, C]`` images, in [0, 1] units.

    Exact and memory-light: computed from each channel's 256-bin histogram. A constant channel
    gets std 1 so that normalising never divides by zero.
    """
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[-1]):
        hist = np.bincount(images[..., c].ravel(), minlength=256).astype(np.float64)
        p = hist / hist.sum()
        mean = float(p @ levels)
        std = float(np.sqrt(p @ (levels - mean) ** 2))
        means.append(mean)
        stds.append(std if std > 0.0 else 1.0)
    return tuple(means), tuple(stds)
