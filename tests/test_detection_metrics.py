"""Detection metrics: NMS, scale_boxes, matching and AP under the yolov5 / voc07 / voc12 rules (docs/yolov5n.md §4)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.metrics.ap import average_precision
from snnjax.metrics.detection import (
    IOU_THRESHOLDS,
    PR_RECALLS,
    evaluate,
    non_max_suppression,
    pr_curve,
    scale_boxes,
)

RULES = ("yolov5", "voc07", "voc12")


def one_class(*boxes):
    """Rows (x1, y1, x2, y2[, score]) of class 0."""
    return np.array([[*b, 0] for b in boxes], float).reshape(len(boxes), -1)


# --------------------------------------------------------------------------------------------------
# References, written from the sources (ultralytics/yolov5 v7.0 val.py + utils/metrics.py, VOCevaldet.m)


def ref_process_batch(detections, labels, iouv):
    """val.py ``process_batch``: labels [M, 5] = (class, x1, y1, x2, y2)."""
    a1, a2, b1, b2 = labels[:, None, 1:3], labels[:, None, 3:5], detections[None, :, 0:2], detections[None, :, 2:4]
    inter = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None).prod(2)
    iou = inter / ((a2 - a1).prod(2) + (b2 - b1).prod(2) - inter + 1e-7)
    correct = np.zeros((len(detections), len(iouv)), bool)
    correct_class = labels[:, 0:1] == detections[:, 5]
    for i in range(len(iouv)):
        x = np.where((iou >= iouv[i]) & correct_class)
        if x[0].shape[0]:
            matches = np.concatenate((np.stack(x, 1), iou[x[0], x[1]][:, None]), 1)
            if x[0].shape[0] > 1:
                matches = matches[matches[:, 2].argsort()[::-1]]
                matches = matches[np.unique(matches[:, 1], return_index=True)[1]]
                matches = matches[np.unique(matches[:, 0], return_index=True)[1]]
            correct[matches[:, 1].astype(int), i] = True
    return correct


def ref_ap_per_class(tp, conf, pred_cls, target_cls):
    """utils/metrics.py ``ap_per_class`` + ``compute_ap`` ('interp'); returns (p, r, ap)."""
    i = np.argsort(-conf, kind="stable")
    tp, conf, pred_cls = tp[i], conf[i], pred_cls[i]
    unique_classes, nt = np.unique(target_cls, return_counts=True)
    px = np.linspace(0, 1, 1000)
    ap, p, r = (
        np.zeros((len(unique_classes), tp.shape[1])),
        np.zeros((len(unique_classes), 1000)),
        np.zeros((len(unique_classes), 1000)),
    )
    for ci, c in enumerate(unique_classes):
        i = pred_cls == c
        if i.sum() == 0:
            continue
        fpc, tpc = (1 - tp[i]).cumsum(0), tp[i].cumsum(0)
        recall, precision = tpc / (nt[ci] + 1e-16), tpc / (tpc + fpc)
        r[ci] = np.interp(-px, -conf[i], recall[:, 0], left=0)
        p[ci] = np.interp(-px, -conf[i], precision[:, 0], left=1)
        for j in range(tp.shape[1]):
            mrec = np.concatenate(([0.0], recall[:, j], [1.0]))
            mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate(([1.0], precision[:, j], [0.0])))))
            x = np.linspace(0, 1, 101)
            y = np.interp(x, mrec, mpre)
            ap[ci, j] = np.sum((y[1:] + y[:-1]) * np.diff(x) / 2)
    f1 = 2 * p * r / (p + r + 1e-16)
    nf = round(1000 * 0.1 * 2) // 2 + 1
    y = f1.mean(0)
    smooth = np.convolve(
        np.concatenate((np.ones(nf // 2) * y[0], y, np.ones(nf // 2) * y[-1])), np.ones(nf) / nf, mode="valid"
    )
    i = smooth.argmax()
    return p[:, i], r[:, i], ap


def ref_yolov5(preds, gts):
    """val.py statistics loop followed by ``ap_per_class``."""
    stats = []
    for pred, gt in zip(preds, gts):
        labels = np.concatenate([gt[:, 4:5], gt[:, :4]], 1)
        correct = ref_process_batch(pred, labels, IOU_THRESHOLDS) if len(gt) else np.zeros((len(pred), 10), bool)
        stats.append((correct, pred[:, 4], pred[:, 5], gt[:, 4]))
    tp, conf, pcls, tcls = (np.concatenate(x, 0) for x in zip(*stats))
    return ref_ap_per_class(tp.astype(float), conf, pcls, tcls)


def ref_voc(preds, gts, difficult, c, t, use_07):
    """VOCevaldet.m for class c at threshold t (+1-pixel areas, ovmax >= t), then VOCdevkit's AP."""
    dets = [(p[4], i, p[:4]) for i, pr in enumerate(preds) for p in pr if p[5] == c]
    dets.sort(key=lambda d: -d[0])
    claimed = [np.zeros(len(g), bool) for g in gts]
    npos = sum(int(((g[:, 4] == c) & ~d).sum()) for g, d in zip(gts, difficult))
    tp, fp = [], []
    for _, i, bb in dets:
        ovmax, jmax = -np.inf, -1
        for j, g in enumerate(gts[i]):
            if g[4] != c:
                continue
            iw = min(bb[2], g[2]) - max(bb[0], g[0]) + 1
            ih = min(bb[3], g[3]) - max(bb[1], g[1]) + 1
            if iw > 0 and ih > 0:
                ua = (bb[2] - bb[0] + 1) * (bb[3] - bb[1] + 1) + (g[2] - g[0] + 1) * (g[3] - g[1] + 1) - iw * ih
                if iw * ih / ua > ovmax:
                    ovmax, jmax = iw * ih / ua, j
        if ovmax >= t:
            if not difficult[i][jmax]:
                tp.append(not claimed[i][jmax])
                fp.append(claimed[i][jmax])
                claimed[i][jmax] = True
        else:
            tp.append(False)
            fp.append(True)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    rec, prec = tp / npos, tp / np.maximum(tp + fp, 1e-300)
    if use_07:
        return sum(max(prec[rec >= s], default=0) for s in np.arange(11) / 10) / 11
    mrec, mpre = np.concatenate(([0], rec, [1])), np.concatenate(([0], prec, [0]))
    for k in range(len(mpre) - 2, -1, -1):
        mpre[k] = max(mpre[k], mpre[k + 1])
    k = np.flatnonzero(mrec[1:] != mrec[:-1])
    return np.sum((mrec[k + 1] - mrec[k]) * mpre[k + 1])


def ref_nms(x, conf_thres, iou_thres, multi_label, max_det, max_nms):
    """utils/general.py ``non_max_suppression`` with a plain greedy NMS in place of torchvision's."""
    out = []
    for xi in x:
        xi = xi[xi[:, 4] > conf_thres]
        scores = xi[:, 5:] * xi[:, 4:5]
        box = np.concatenate([xi[:, :2] - xi[:, 2:4] / 2, xi[:, :2] + xi[:, 2:4] / 2], 1)
        if multi_label:
            i, j = np.nonzero(scores > conf_thres)
            box, score, cls = box[i], scores[i, j], j
        else:
            cls, score = scores.argmax(1), scores.max(1)
            box, score, cls = box[score > conf_thres], score[score > conf_thres], cls[score > conf_thres]
        order = np.argsort(-score, kind="stable")[:max_nms]
        kept = []
        for a in order:
            if all(cls[b] != cls[a] or iou_np(box[b], box[a]) <= iou_thres for b in kept):
                kept.append(a)
        kept = kept[:max_det]
        out.append(np.concatenate([box[kept], score[kept, None], cls[kept, None]], 1))
    return out


def iou_np(a, b):
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def random_dataset(rng, num_images=25, num_classes=3):
    """Clustered boxes so that detections overlap GTs and each other at every IoU level."""
    preds, gts, difficult = [], [], []
    for _ in range(num_images):
        m = rng.integers(0, 5)
        xy = rng.uniform(0, 200, (m, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 80, (m, 2)), rng.integers(0, num_classes, (m, 1))], 1)
        n = rng.integers(0, 12)
        src = gt[rng.integers(0, m, n)] if m else np.concatenate([rng.uniform(0, 200, (n, 4)), np.zeros((n, 1))], 1)
        box = src[:, :4] + rng.normal(0, 6, (n, 4))
        box[:, 2:] = np.maximum(box[:, 2:], box[:, :2] + 1)
        cls = np.where(rng.uniform(size=n) < 0.8, src[:, 4], rng.integers(0, num_classes, n))
        pred = np.concatenate([box, rng.uniform(0, 1, (n, 1)), cls[:, None]], 1)
        preds.append(pred[np.argsort(-pred[:, 4])])
        gts.append(gt)
        difficult.append(rng.uniform(size=m) < 0.2)
    return preds, gts, difficult


# --------------------------------------------------------------------------------------------------
# AP and matching rules, hand-computed


@pytest.mark.parametrize("rule, expected", [("yolov5", 0.995), ("voc07", 1.0), ("voc12", 1.0)])
def test_perfect_detections(rule, expected):
    # yolov5: the envelope is 1 up to recall 1, but np.interp at r = 1 hits the (1, 0) sentinel, so the
    # last trapezoid is (1 + 0)/2 · 0.01 and AP = 0.99 + 0.005 = 0.995 (val.py's known ceiling).
    gts = [one_class((0, 0, 10, 10), (20, 20, 40, 30)), one_class((5, 5, 50, 50))]
    preds = [one_class((0, 0, 10, 10, 0.9), (20, 20, 40, 30, 0.8)), one_class((5, 5, 50, 50, 0.7))]
    out = evaluate(preds, gts, rule=rule)
    assert out["map50"] == pytest.approx(expected)
    assert out["map50_95"] == pytest.approx(expected)
    assert out["precision"] == 1 and out["recall"] == 1


@pytest.mark.parametrize("rule, expected", [("yolov5", 497 / 600), ("voc07", 28 / 33), ("voc12", 5 / 6)])
def test_tp_fp_tp_curve(rule, expected):
    # 2 GTs; detections TP (0.9), FP (0.8), TP (0.7): recall 1/2, 1/2, 1; precision 1, 1/2, 2/3.
    # Envelope: 1 for r ≤ 1/2, 2/3 for 1/2 < r ≤ 1.
    # voc12 (all-point): 1/2 · 1 + 1/2 · 2/3 = 5/6.
    # voc07 (11-point): t = 0 … 0.5 → 1 (6 points), t = 0.6 … 1 → 2/3 (5 points): (6 + 10/3)/11 = 28/33.
    # yolov5 (101-point): y = 1 at r = 0 … 0.49, 2/3 at 0.50 … 0.99 (np.interp takes the right side of the
    # step at 0.5), 0 at r = 1 (the sentinel); trapezoids: 0.49 + (1 + 2/3)/2 · 0.01 + 0.49 · 2/3
    # + (2/3)/2 · 0.01 = 0.49 + 1/120 + 0.98/3 + 1/300 = 497/600.
    gts = [one_class((0, 0, 10, 10), (20, 20, 30, 30))]
    preds = [one_class((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.8), (20, 20, 30, 30, 0.7))]
    assert evaluate(preds, gts, rule=rule)["map50"] == pytest.approx(expected, abs=1e-12)


def test_average_precision_against_the_references():
    rng = np.random.default_rng(0)
    for _ in range(50):
        hits = rng.uniform(size=rng.integers(1, 30)) < 0.5
        npos = hits.sum() + rng.integers(0, 4)
        if npos == 0:
            continue
        recall, precision = np.cumsum(hits) / npos, np.cumsum(hits) / np.arange(1, len(hits) + 1)
        # 11-point and all-point straight from their definitions.
        point11 = np.mean([max(precision[recall >= t], default=0) for t in np.arange(11) / 10])
        all_point = sum(max(precision[k:]) / npos for k in np.flatnonzero(hits))
        assert average_precision(recall, precision, "point11") == pytest.approx(point11, abs=1e-12)
        assert average_precision(recall, precision, "continuous") == pytest.approx(all_point, abs=1e-12)
        ref = ref_ap_per_class(
            hits[:, None].astype(float), -np.arange(len(hits), dtype=float), np.zeros(len(hits)), np.zeros(npos)
        )[2][0, 0]
        assert average_precision(recall, precision, "interp101") == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("rule, expected", [("yolov5", 497 / 600), ("voc07", 1.0), ("voc12", 1.0)])
def test_detection_on_difficult_gt(rule, expected):
    # GTs A, B (difficult), C; one detection on each, at 0.9, 0.8, 0.7.
    # yolov5 has dropped B from the labels: TP, FP, TP over 2 labels (497/600, as above).
    # VOC ignores the detection on B: TP, TP over 2 labels (1.0).
    gts = [one_class((0, 0, 10, 10), (50, 50, 60, 60), (20, 20, 30, 30))]
    difficult = [np.array([False, True, False])]
    preds = [one_class((0, 0, 10, 10, 0.9), (50, 50, 60, 60, 0.8), (20, 20, 30, 30, 0.7))]
    out = evaluate(preds, gts, difficult, rule=rule)
    assert out["map50"] == pytest.approx(expected, abs=1e-12)
    assert out["num_labels"].tolist() == [2]


@pytest.mark.parametrize("rule", RULES)
def test_iou_exactly_half_is_a_match(rule):
    # IoU = 100 / 200 in the rule's own arithmetic: ≥ 0.5 matches (val.py `iou >= iouv`,
    # VOCevaldet.m `ovmax >= minoverlap`). With +1 pixels [0, 9] is 10 pixels wide.
    d = 10 if rule == "yolov5" else 9
    gts = [one_class((0, 0, d, d))]
    preds = [one_class((0, 0, d, 2 * d + (0 if rule == "yolov5" else 1), 0.9))]
    out = evaluate(preds, gts, rule=rule)
    assert out["ap_per_class"][0, 0] > 0.99
    assert out["ap_per_class"][0, 1] == 0


def test_voc_counts_pixels_inclusively():
    # GT [0, 0, 9, 19], detection [0, 0, 9, 9]: continuous IoU 81/171 = 0.474 (yolov5: FP),
    # +1-pixel IoU 100/200 = 0.5 (VOC: TP).
    gts = [one_class((0, 0, 9, 19))]
    preds = [one_class((0, 0, 9, 9, 0.9))]
    assert evaluate(preds, gts, rule="yolov5")["map50"] == 0
    assert evaluate(preds, gts, rule="voc12")["map50"] == 1


@pytest.mark.parametrize("rule, expected", [("yolov5", 0.6225), ("voc07", 6 / 11), ("voc12", 0.5)])
def test_matching_takes_best_iou_gt_then_most_confident_detection(rule, expected):
    # Detection A (0.9) overlaps GT1 (IoU 0.6) and GT2 (IoU 0.8): it takes GT2, its best IoU.
    # Detection B (0.8) overlaps GT1 (0.83) and GT2 (0.9): its best is GT2, already taken, so it is an FP
    # although its IoU with GT2 is higher than A's. (+1-pixel IoUs: 0.60, 0.80, 0.84, 0.90.)
    # val.py agrees with the devkit: its first np.unique keeps each detection's best label, but the
    # second runs on rows ordered by detection index (the re-sort by IoU is commented out in v7.0), so
    # each label keeps its most confident detection, not its best-IoU one.
    # Curve TP, FP over 2 labels: recall 1/2, 1/2; precision 1, 1/2. voc12: 1/2 · 1. voc07: t = 0 … 0.5
    # → 1, above → 0: 6/11. yolov5: y = 1 on 0 … 0.49, then the envelope 1/2 at r = 0.5 falls linearly to
    # the (1, 0) sentinel: 0.49 + (1 + 1/2)/2 · 0.01 + 1/2 · 1/2 · 1/2 = 0.6225.
    # (Matching B first, by IoU, would give FP, TP instead: voc12 1/4.)
    gts = [one_class((0, 0, 100, 60), (0, 0, 100, 80))]
    preds = [one_class((0, 0, 100, 100, 0.9), (0, 0, 100, 72, 0.8))]
    assert evaluate(preds, gts, rule=rule)["map50"] == pytest.approx(expected, abs=1e-12)
    assert ref_process_batch(preds[0], gts[0][:, [4, 0, 1, 2, 3]], IOU_THRESHOLDS)[:, 0].tolist() == [True, False]


@pytest.mark.parametrize("rule", RULES)
def test_detections_on_unlabelled_images_are_false_positives(rule):
    # Image 2 has no labels: its detection (0.95, the most confident) is an FP ahead of the TP:
    # precision 0 then 1/2 at recall 0 then 1; envelope 1/2 everywhere.
    gts = [one_class((0, 0, 10, 10)), np.zeros((0, 5))]
    preds = [one_class((0, 0, 10, 10, 0.9)), one_class((0, 0, 10, 10, 0.95))]
    expected = {"yolov5": 0.5 * 0.99 + 0.0025, "voc07": 0.5, "voc12": 0.5}[rule]
    assert evaluate(preds, gts, rule=rule)["map50"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("rule, expected", [("yolov5", 0.995 / 2), ("voc07", 0.5), ("voc12", 0.5)])
def test_map50_95_counts_a_box_at_the_thresholds_below_its_iou(rule, expected):
    # IoU 0.72 (0.7228 with +1 pixels): TP at t = 0.50 … 0.70 (5 thresholds), FP at 0.75 … 0.95.
    gts = [one_class((0, 0, 100, 100))]
    preds = [one_class((0, 0, 100, 72, 0.9))]
    out = evaluate(preds, gts, rule=rule)
    assert out["map50_95"] == pytest.approx(expected)
    assert (out["ap_per_class"][0, :5] > 0.99).all() and (out["ap_per_class"][0, 5:] == 0).all()


def test_classes_without_labels_are_not_averaged():
    gts = [one_class((0, 0, 10, 10))]
    preds = [np.array([[0, 0, 10, 10, 0.9, 0], [0, 0, 10, 10, 0.8, 3]])]
    out = evaluate(preds, gts, rule="voc12")
    assert out["classes"].tolist() == [0] and out["map50"] == 1


def test_no_true_positive_gives_zero():
    gts = [one_class((0, 0, 10, 10))]
    preds = [one_class((50, 50, 60, 60, 0.9))]
    for rule in RULES:
        out = evaluate(preds, gts, rule=rule)
        assert out["map50"] == 0 and out["map50_95"] == 0 and out["precision"] == 0 and out["recall"] == 0


def test_yolov5_rule_equals_val_py_on_random_data():
    preds, gts, difficult = random_dataset(np.random.default_rng(1))
    out = evaluate(preds, gts, difficult, rule="yolov5")
    kept = [g[~d] for g, d in zip(gts, difficult)]
    p, r, ap = ref_yolov5(preds, kept)
    np.testing.assert_allclose(out["ap_per_class"], ap, atol=1e-12)
    np.testing.assert_allclose(out["precision_per_class"], p, atol=1e-12)
    np.testing.assert_allclose(out["recall_per_class"], r, atol=1e-12)
    assert 0 < out["map50"] < 1


@pytest.mark.parametrize("rule", ["voc07", "voc12"])
def test_voc_rules_equal_the_devkit_on_random_data(rule):
    preds, gts, difficult = random_dataset(np.random.default_rng(2))
    out = evaluate(preds, gts, difficult, rule=rule)
    for ci, c in enumerate(out["classes"]):
        for j in (0, 3, 7):
            ref = ref_voc(preds, gts, difficult, c, IOU_THRESHOLDS[j], rule == "voc07")
            assert out["ap_per_class"][ci, j] == pytest.approx(ref, abs=1e-12)


def test_bad_arguments_raise():
    gts = [one_class((0, 0, 10, 10))]
    preds = [one_class((0, 0, 10, 10, 0.9))]
    with pytest.raises(ValueError, match=r"^rule: got 'coco'; accepted: 'yolov5', 'voc07', 'voc12'$"):
        evaluate(preds, gts, rule="coco")
    with pytest.raises(ValueError, match=r"^preds\[0\]: got \(2, 5\); accepted: an array \[n, 6\]$"):
        evaluate([np.zeros((2, 5))], gts)
    with pytest.raises(ValueError, match=r"^len\(preds\): got 2; accepted: 1, one array per image$"):
        evaluate(preds + preds, gts)
    with pytest.raises(
        ValueError, match=r"^len\(difficult\[0\]\): got 2; accepted: 1, one flag per ground-truth box of image 0$"
    ):
        evaluate(preds, gts, [np.zeros(2, bool)])
    with pytest.raises(ValueError, match=r"^len\(difficult\[0\]\): got 2; accepted: 1, one flag per ground-truth box "):
        evaluate(preds + preds, gts + gts, [np.zeros(2, bool), np.zeros(0, bool)])  # 2 flags for 2 boxes in all
    with pytest.raises(ValueError, match=r"^preds class ids: got 2\.0; accepted: integers in \[0, 1\)$"):
        evaluate([np.array([[0, 0, 10, 10, 0.9, 2]])], gts, num_classes=1)


# --------------------------------------------------------------------------------------------------
# NMS


def decoded(*rows):
    """Rows (cx, cy, w, h, obj, cls0, cls1, …) as one image [1, N, 5 + nc]."""
    return jnp.asarray([rows], jnp.float32)


def kept(dets, count, image=0):
    return np.asarray(dets[image, : int(count[image])])


def test_nms_suppresses_overlapping_boxes_of_one_class():
    dets, count = non_max_suppression(
        decoded([50, 50, 20, 20, 0.9, 1, 0], [52, 50, 20, 20, 0.8, 1, 0], [90, 90, 10, 10, 0.7, 1, 0]),
        multi_label=False,
    )
    np.testing.assert_allclose(kept(dets, count)[:, 4], [0.9, 0.7])
    np.testing.assert_allclose(kept(dets, count)[0, :4], [40, 40, 60, 60])
    assert (np.asarray(dets[0, 2:]) == 0).all()


def test_nms_keeps_overlapping_boxes_of_different_classes():
    dets, count = non_max_suppression(
        decoded([50, 50, 20, 20, 0.9, 1, 0], [52, 50, 20, 20, 0.8, 0, 1]), multi_label=False
    )
    assert kept(dets, count)[:, 5].tolist() == [0, 1]


def test_multi_label_emits_one_detection_per_class_above_threshold():
    x = decoded([50, 50, 20, 20, 0.5, 0.8, 0.6, 0.001])
    dets, count = non_max_suppression(x)
    np.testing.assert_allclose(kept(dets, count)[:, 4:], [[0.4, 0], [0.3, 1]], rtol=1e-6)
    dets, count = non_max_suppression(x, multi_label=False)
    np.testing.assert_allclose(kept(dets, count)[:, 4:], [[0.4, 0]], rtol=1e-6)


def test_nms_confidence_threshold_applies_to_obj_and_score():
    # obj 0.2 ≤ 0.25 is dropped even with cls 1; obj·cls = 0.24 ≤ 0.25 is dropped; 0.3 · 0.9 = 0.27 stays.
    x = decoded([10, 10, 5, 5, 0.2, 1.0], [30, 30, 5, 5, 0.3, 0.8], [60, 60, 5, 5, 0.3, 0.9])
    dets, count = non_max_suppression(x, conf_thres=0.25)
    assert int(count[0]) == 1 and kept(dets, count)[0, 0] == pytest.approx(57.5)


def test_nms_truncates_to_max_det_and_counts():
    rows = [[20 * i + 5, 5, 8, 8, 0.9 - 0.01 * i, 1] for i in range(7)]
    dets, count = non_max_suppression(jnp.asarray([rows, rows[:2] + [[0, 0, 0, 0, 0, 0]] * 5], jnp.float32), max_det=4)
    assert dets.shape == (2, 4, 6) and count.tolist() == [4, 2]
    np.testing.assert_allclose(kept(dets, count)[:, 4], [0.9, 0.89, 0.88, 0.87], rtol=1e-6)
    assert (np.asarray(dets[1, 2:]) == 0).all()


@pytest.mark.parametrize(
    "multi_label, max_candidates, chunk", [(True, 30000, 1024), (False, 30000, 16), (True, 150, 32), (True, 30000, 7)]
)
def test_nms_equals_reference_greedy_on_random_inputs(multi_label, max_candidates, chunk):
    rng = np.random.default_rng(chunk)
    b, n, nc = 3, 200, 4
    centres = rng.uniform(20, 300, (b, 6, 2))[:, rng.integers(0, 6, n)] + rng.normal(0, 4, (b, n, 2))
    x = np.concatenate(
        [centres, rng.uniform(10, 60, (b, n, 2)), rng.uniform(0, 1, (b, n, 1)), rng.uniform(0, 1, (b, n, nc)) ** 2], -1
    ).astype(np.float32)
    nms = jax.jit(
        functools.partial(
            non_max_suppression,
            conf_thres=0.05,
            multi_label=multi_label,
            max_det=60,
            max_candidates=max_candidates,
            chunk=chunk,
        )
    )
    dets, count = nms(jnp.asarray(x))
    for i, ref in enumerate(ref_nms(x, 0.05, 0.6, multi_label, 60, max_candidates)):
        np.testing.assert_allclose(kept(dets, count, i), ref, rtol=1e-6, atol=1e-4)
    assert 0 < int(count.min()) and int(count.max()) <= 60


def test_nms_rejects_bad_shapes():
    with pytest.raises(
        ValueError, match=r"(?m)^decoded: got \(4, 6\); accepted: an array \[B, N, 5 \+ nc\] with nc >= 1$"
    ):
        non_max_suppression(jnp.zeros((4, 6)))
    with pytest.raises(ValueError, match=r"(?m)^max_det: got 0; accepted: an int >= 1$"):
        non_max_suppression(jnp.zeros((1, 4, 6)), max_det=0)


# --------------------------------------------------------------------------------------------------
# scale_boxes


def test_scale_boxes_inverts_a_letterbox():
    # 375 × 500 (h × w) letterboxed into 320 × 320: gain 0.64, image 240 × 320, pad_h = 40, pad_w = 0.
    original = np.array([[50.0, 60, 200, 300, 0.9, 3]])
    boxed = original.copy()
    boxed[:, :4] = original[:, :4] * 0.64 + [0, 40, 0, 40]
    np.testing.assert_allclose(scale_boxes(boxed, (320, 320), (375, 500)), original)
    np.testing.assert_allclose(scale_boxes(boxed, (320, 320), (375, 500), ratio_pad=((0.64, 0.64), (0, 40))), original)
    under_jit = jax.jit(lambda b: scale_boxes(b, (320, 320), (375, 500)))(jnp.asarray(boxed, jnp.float32))
    np.testing.assert_allclose(under_jit, original, rtol=1e-6)


def test_scale_boxes_clips_to_the_original_image():
    np.testing.assert_allclose(
        scale_boxes(np.array([[-10.0, 0, 330, 330]]), (320, 320), (375, 500)), [[0, 0, 500, 375]]
    )


def test_pr_curve_is_the_precision_envelope_at_each_recall_and_zero_beyond_the_last():
    recall = np.array([0.25, 0.25, 0.5, 0.75])  # ranks 1..4: TP, FP, TP, TP of 4 labels
    precision = np.array([1.0, 0.5, 2 / 3, 0.75])
    curve = pr_curve(recall, precision)
    assert curve.shape == PR_RECALLS.shape
    np.testing.assert_allclose(curve[PR_RECALLS <= 0.25], 1.0)
    np.testing.assert_allclose(curve[(PR_RECALLS > 0.25) & (PR_RECALLS <= 0.75 + 1e-9)], 0.75)
    np.testing.assert_array_equal(curve[PR_RECALLS > 0.75 + 1e-9], 0.0)
    np.testing.assert_array_equal(pr_curve(np.array([]), np.array([])), np.zeros(101))


def test_evaluate_returns_one_pr_curve_per_labelled_class():
    gts = [np.array([[0, 0, 10, 10, 0], [20, 20, 30, 30, 1]], float)]
    preds = [np.array([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.8, 1]], float)]
    curves = evaluate(preds, gts)["pr_curves"]
    assert curves.shape == (2, 101)
    np.testing.assert_allclose(curves[0], 1.0)  # class 0: found first, nothing else
    np.testing.assert_array_equal(curves[1], 0.0)  # class 1: only a false positive
