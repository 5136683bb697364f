"""Average precision of one ranked list, and YOLOv5's precision/recall at the best-F1 confidence (host side)."""

from __future__ import annotations

import numpy as np

from snnjax.checks import one_of

AP_METHODS = ("interp101", "point11", "continuous")


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "interp101") -> float:
    """AP of a precision/recall curve given at each ranked detection (recall non-decreasing).

    With sentinels (r, p) = (0, p0) first and (1, 0) last and the envelope p̂_i = max_{j ≥ i} p_j:
      - ``interp101`` (YOLOv5 ``compute_ap``, p0 = 1): p̂ linearly interpolated at r = 0, 0.01, …, 1 and
        integrated with the trapezoid rule;
      - ``continuous`` (VOC2010+ all-point, p0 = 0): AP = Σ_i (r_{i+1} − r_i) · p̂_{i+1};
      - ``point11`` (VOC2007, p0 = 0): AP = (1/11) Σ_{t = 0, 0.1, …, 1} max{p_i : r_i ≥ t}, 0 when no
        r_i ≥ t. The grid is exactly k/10 (the devkits' ``0:0.1:1`` and ``np.arange(0, 1.1, 0.1)`` are one
        ulp above k/10 at some points, which only matters when a recall equals such a point exactly).
    An empty curve has AP 0.
    """
    one_of(AP_METHODS)("method", method)
    if len(recall) == 0:
        return 0.0
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0 if method == "interp101" else 0.0], precision, [0.0]))
    envelope = np.flip(np.maximum.accumulate(np.flip(mpre)))
    if method == "interp101":
        x = np.linspace(0, 1, 101)
        y = np.interp(x, mrec, envelope)
        return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)))
    if method == "continuous":
        i = np.flatnonzero(mrec[1:] != mrec[:-1])
        return float(np.sum((mrec[i + 1] - mrec[i]) * envelope[i + 1]))
    return float(np.mean(envelope[np.searchsorted(mrec, np.arange(11) / 10, side="left")]))


def _smooth(y: np.ndarray, fraction: float) -> np.ndarray:
    """YOLOv5's box filter over ``fraction`` of the points, padded with the end values."""
    nf = round(len(y) * fraction * 2) // 2 + 1
    padded = np.concatenate((np.full(nf // 2, y[0]), y, np.full(nf // 2, y[-1])))
    return np.convolve(padded, np.ones(nf) / nf, mode="valid")


def best_f1_point(curves: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-class precision and recall at the confidence maximising the smoothed mean F1 (YOLOv5 ``ap_per_class``).

    ``curves``: per class (confidence descending, recall, precision) at each ranked detection. Each curve
    is sampled at confidences c = 0, 1/999, …, 1 (recall 0 and precision 1 above the top confidence;
    classes without detections give 0 and 0); F1 = 2PR / (P + R + 1e-16); the confidence is the argmax of
    the class-mean F1 after a box filter over 10 % of the grid. Returns (precision [C], recall [C], conf).
    """
    grid = np.linspace(0, 1, 1000)
    p, r = np.zeros((len(curves), grid.size)), np.zeros((len(curves), grid.size))
    for c, (conf, recall, precision) in enumerate(curves):
        if len(conf):
            r[c] = np.interp(-grid, -conf, recall, left=0)
            p[c] = np.interp(-grid, -conf, precision, left=1)
    f1 = 2 * p * r / (p + r + 1e-16)
    i = int(_smooth(f1.mean(0), 0.1).argmax()) if len(curves) else 0
    return p[:, i], r[:, i], float(grid[i])
