"""Detection-to-ground-truth matching over a whole dataset, vectorised with NumPy (host side)."""

from __future__ import annotations

import numpy as np

from snnjax.boxes import box_iou


def _pairs(det_key: np.ndarray, gt_key: np.ndarray, num_keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (detection, ground truth) pairs with equal keys in [0, num_keys), grouped by detection, GTs in
    input order. Returns (pair detection index, pair GT index, start of each detection's group)."""
    gt_order = np.argsort(gt_key, kind="stable")
    gt_count = np.bincount(gt_key, minlength=num_keys)
    gt_start = np.cumsum(gt_count) - gt_count
    lo, n = gt_start[det_key], gt_count[det_key]
    starts = np.cumsum(n) - n
    det = np.repeat(np.arange(len(det_key)), n)
    gt = gt_order[lo[det] + np.arange(len(det)) - starts[det]]
    return det, gt, starts


def _first_of_each(values: np.ndarray, size: int) -> np.ndarray:
    """Positions of the first occurrence of each distinct value of ``values`` (ints in [0, size))."""
    first = np.full(size, len(values))
    np.minimum.at(first, values, np.arange(len(values)))
    return first[first < len(values)]


def match_detections(
    det_image: np.ndarray,
    det_box: np.ndarray,
    det_class: np.ndarray,
    gt_image: np.ndarray,
    gt_box: np.ndarray,
    gt_class: np.ndarray,
    gt_difficult: np.ndarray,
    thresholds: np.ndarray,
    *,
    pixel_offset: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of detections, given best first, at each IoU threshold t.

    Each detection d takes the GT g(d) of its image and class with the highest IoU (the first on ties,
    IoU by ``box_iou(…, pixel_offset)``). If IoU(d, g(d)) ≥ t: a difficult g(d) makes d ignored;
    otherwise d is a TP when it is the first detection to take g(d), else an FP.
    Every other detection is an FP. This is the VOC devkit's rule (``VOCevaldet.m``, ``voc_eval.py``)
    and also exactly YOLOv5's ``process_batch``: its first ``np.unique`` keeps each detection's best
    label, its second keeps each label's lowest detection index, i.e. the most confident detection.

    Returns (tp, ignored), booleans ``[D, T]``.
    """
    num_classes = int(max(det_class.max(initial=-1), gt_class.max(initial=-1))) + 1
    num_images = int(max(det_image.max(initial=-1), gt_image.max(initial=-1))) + 1
    det, gt, starts = _pairs(
        det_image * num_classes + det_class, gt_image * num_classes + gt_class, num_images * num_classes
    )
    iou = box_iou(det_box[det], gt_box[gt], pixel_offset)
    has_pair = np.bincount(det, minlength=len(det_image)) > 0
    best_iou = np.full(len(det_image), -np.inf)
    if len(iou):
        best_iou[has_pair] = np.maximum.reduceat(iou, starts[has_pair])
    is_best = np.flatnonzero(iou == best_iou[det])
    first_best = is_best[_first_of_each(det[is_best], len(det_image))]
    best_gt = np.full(len(det_image), -1)
    best_gt[det[first_best]] = gt[first_best]
    best_difficult = np.zeros(len(det_image), bool)
    best_difficult[has_pair] = gt_difficult[best_gt[has_pair]]

    tp = np.zeros((len(det_image), len(thresholds)), bool)
    ignored = np.zeros_like(tp)
    for j, t in enumerate(thresholds):
        overlaps = best_iou >= t
        ignored[:, j] = overlaps & best_difficult
        claims = np.flatnonzero(overlaps & ~best_difficult)
        tp[claims[_first_of_each(best_gt[claims], len(gt_image))], j] = True
    return tp, ignored
