"""Detection metrics: YOLOv5 NMS, the letterbox inverse, and dataset mAP under YOLOv5's or the VOC devkit's rules.

``evaluate`` runs on the host (NumPy): collect per-image detections (e.g. ``dets[i, :count[i]]`` from
``non_max_suppression``, mapped to original pixels with ``scale_boxes``) and ground truths, then call it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from snnjax.boxes import scale_boxes
from snnjax.checks import InvalidValue, check, one_of
from snnjax.metrics.ap import average_precision, best_f1_point
from snnjax.metrics.matching import match_detections
from snnjax.metrics.nms import non_max_suppression

__all__ = ["IOU_THRESHOLDS", "RULES", "evaluate", "non_max_suppression", "scale_boxes"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass(frozen=True)
class Rule:
    """How a benchmark matches and scores: see ``match_detections`` and ``average_precision``."""

    drop_difficult: bool  # remove difficult GTs (YOLOv5's VOC labels) rather than ignore detections on them
    pixel_offset: float  # 1: VOC's inclusive-pixel areas (x2 − x1 + 1)
    ap_method: str


RULES = {
    "yolov5": Rule(drop_difficult=True, pixel_offset=0.0, ap_method="interp101"),
    "voc07": Rule(drop_difficult=False, pixel_offset=1.0, ap_method="point11"),
    "voc12": Rule(drop_difficult=False, pixel_offset=1.0, ap_method="continuous"),
}


def _concat(items: Sequence[Any], name: str, width: int | None, num_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Stacks per-image arrays ``[n_i, width]`` (``[n_i]`` when width is None); returns (rows, image index)."""
    check(len(items) == num_images, f"len({name})", len(items), f"{num_images}, one array per image")
    empty = (0,) if width is None else (0, width)
    arrays = [np.asarray(a, np.float64) for a in items]
    arrays = [a.reshape(empty) if a.size == 0 else a for a in arrays]
    for i, a in enumerate(arrays):
        shape = "[n]" if width is None else f"[n, {width}]"
        check(a.ndim == len(empty) and a.shape[1:] == empty[1:], f"{name}[{i}]", a.shape, f"an array {shape}")
    return np.concatenate([np.zeros(empty)] + arrays), np.repeat(np.arange(num_images), [len(a) for a in arrays])


def _class_ids(values: np.ndarray, name: str, num_classes: int | None) -> np.ndarray:
    ids = values.astype(np.int64)
    bad = (ids != values) | (ids < 0)
    if num_classes is not None:
        bad |= ids >= num_classes
    if bad.any():
        accepted = "integers >= 0" if num_classes is None else f"integers in [0, {num_classes})"
        raise InvalidValue(f"{name} class ids", float(values[bad][0]), accepted)
    return ids


def _ap_table(
    tp: np.ndarray,
    ignored: np.ndarray,
    score: np.ndarray,
    det_class: np.ndarray,
    classes: np.ndarray,
    num_labels: np.ndarray,
    method: str,
) -> tuple[np.ndarray, list]:
    """AP ``[C, T]`` per class and threshold from ranked TP flags, leaving out ignored detections:
    recall = cumulative TP / labels, precision = cumulative TP / rank. Also returns each class's
    (score, recall, precision) curve at the first threshold."""
    ap = np.zeros((len(classes), tp.shape[1]))
    curves = []
    for ci, c in enumerate(classes):
        rows = np.flatnonzero(det_class == c)
        class_tp, class_ignored = tp[rows].T, ignored[rows].T
        for j in range(tp.shape[1]):
            counted = ~class_ignored[j]
            tp_sum = np.cumsum(class_tp[j][counted])
            recall, precision = tp_sum / num_labels[ci], tp_sum / np.arange(1, len(tp_sum) + 1)
            ap[ci, j] = average_precision(recall, precision, method)
            if j == 0:
                curves.append((score[rows][counted], recall, precision))
    return ap, curves


PR_RECALLS = np.linspace(0.0, 1.0, 101)


def pr_curve(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Precision envelope (the best precision at this recall or more) at ``PR_RECALLS``; 0 past the last
    recall reached, as a detector that finds no more objects has no precision there."""
    if len(recall) == 0:
        return np.zeros(len(PR_RECALLS))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, PR_RECALLS, side="left")
    return np.where(index < len(recall), envelope[np.minimum(index, len(recall) - 1)], 0.0)


def evaluate(
    preds: Sequence[Any],
    gts: Sequence[Any],
    difficult: Sequence[Any] | None = None,
    rule: str = "yolov5",
    num_classes: int | None = None,
) -> dict[str, Any]:
    """mAP of a dataset's detections.

    preds: per image ``[N, 6]`` (x1, y1, x2, y2, score, class); gts: per image ``[M, 5]``
    (x1, y1, x2, y2, class); difficult: per image bool ``[M]`` (default none), all in original pixels.

    A detection matches at threshold t (0.50, 0.55, …, 0.95) when IoU ≥ t. Rules:
      - ``"yolov5"`` (ultralytics ``val.py``): difficult GTs dropped; AP by 101-point linear
        interpolation of the precision envelope and trapezoid integration (a perfect detector scores
        0.995, a quirk of that rule); precision/recall at the best smoothed-F1 confidence.
      - ``"voc07"`` (VOC devkit, 2007): detections whose best GT is difficult are ignored; areas and
        intersections with the +1-pixel convention; IoU ≥ t as the official ``VOCevaldet.m``
        (py-faster-rcnn's ``voc_eval.py`` uses > t); 11-point AP.
      - ``"voc12"``: as voc07 with the all-point AP (VOC2010+).
    Matching is greedy, most confident detection first, ties in input order (``match_detections``).
    Detections on images without labels of their class are FPs. The devkit defines only t = 0.5;
    ``map50_95`` of the VOC rules applies the same matching at each t.

    mAP is the mean over classes with at least one (non-difficult) label. Returns ``map50``, ``map50_95``,
    ``classes`` [C], ``num_labels`` [C], ``ap50_per_class`` [C], ``ap_per_class`` [C, 10],
    ``precision``/``recall`` (class means at the best-F1 confidence, at t = 0.5), their ``_per_class``
    arrays, ``f1_conf``, ``iou_thresholds``, and ``pr_curves`` [C, 101]: each class's precision envelope at
    t = 0.5 at the recalls ``PR_RECALLS`` (0, 0.01, …, 1; 0 beyond the class's highest recall).
    """
    one_of(tuple(RULES))("rule", rule)
    config = RULES[rule]
    num_images = len(gts)
    det, det_image = _concat(preds, "preds", 6, num_images)
    gt, gt_image = _concat(gts, "gts", 5, num_images)
    if difficult is None:
        gt_difficult = np.zeros(len(gt), bool)
    else:
        flags, flag_image = _concat(difficult, "difficult", None, num_images)
        flag_counts, gt_counts = (np.bincount(index, minlength=num_images) for index in (flag_image, gt_image))
        mismatched = np.flatnonzero(flag_counts != gt_counts)
        if mismatched.size:
            i = int(mismatched[0])
            accepted = f"{gt_counts[i]}, one flag per ground-truth box of image {i}"
            raise InvalidValue(f"len(difficult[{i}])", int(flag_counts[i]), accepted)
        gt_difficult = flags.astype(bool)
    det_class = _class_ids(det[:, 5], "preds", num_classes)
    gt_class = _class_ids(gt[:, 4], "gts", num_classes)
    if config.drop_difficult:
        keep = ~gt_difficult
        gt, gt_image, gt_class, gt_difficult = gt[keep], gt_image[keep], gt_class[keep], gt_difficult[keep]

    order = np.argsort(-det[:, 4], kind="stable")
    det, det_image, det_class = det[order], det_image[order], det_class[order]
    tp, ignored = match_detections(
        det_image,
        det[:, :4],
        det_class,
        gt_image,
        gt[:, :4],
        gt_class,
        gt_difficult,
        IOU_THRESHOLDS,
        pixel_offset=config.pixel_offset,
    )

    classes, num_labels = np.unique(gt_class[~gt_difficult], return_counts=True)
    ap, curves = _ap_table(tp, ignored, det[:, 4], det_class, classes, num_labels, config.ap_method)
    precision, recall, f1_conf = best_f1_point(curves)
    mean = lambda x: float(x.mean()) if x.size else 0.0
    return {
        "map50": mean(ap[:, 0]),
        "map50_95": mean(ap),
        "classes": classes,
        "num_labels": num_labels,
        "ap50_per_class": ap[:, 0],
        "ap_per_class": ap,
        "precision": mean(precision),
        "recall": mean(recall),
        "precision_per_class": precision,
        "recall_per_class": recall,
        "f1_conf": f1_conf,
        "iou_thresholds": IOU_THRESHOLDS,
        "pr_curves": np.array([pr_curve(recall, precision) for _, recall, precision in curves]).reshape(-1, 101),
    }
