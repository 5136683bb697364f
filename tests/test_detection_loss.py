"""YOLOv5 v7.0 loss (docs/yolov5n.md §3.2–3.4): gains, target assignment, CIoU, objectness writes, loss."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax.tasks.detection.loss import (
    ANCHORS,
    STRIDES,
    LossConfig,
    bbox_ciou,
    build_targets,
    objectness_targets,
    scaled_gains,
    yolo_loss,
)

IMG = 320


def positives(boxes_px, level, img=IMG, valid=None):
    """Set of (image, anchor, gj, gi) positives of one level for pixel (cx, cy, w, h) boxes [B, M, 4]."""
    boxes = jnp.asarray(np.asarray(boxes_px, np.float32) / img)
    valid = jnp.ones(boxes.shape[:2], bool) if valid is None else jnp.asarray(valid)
    grid = img // STRIDES[level]
    t = build_targets(
        boxes,
        jnp.zeros(boxes.shape[:2], jnp.int32),
        valid,
        grid_shape=(grid, grid),
        anchors_grid=ANCHORS[level] / STRIDES[level],
        anchor_t=4.0,
    )
    b, k = np.nonzero(np.asarray(t.mask))
    return t, {(int(i), int(t.anchor[i, j]), int(t.gj[i, j]), int(t.gi[i, j])) for i, j in zip(b, k)}


def cells(anchors, centre, *neighbours):
    """Positives of image 0 for ``anchors`` at the (gj, gi) cells ``centre`` and ``neighbours``."""
    return {(0, a, gj, gi) for a in anchors for gj, gi in (centre, *neighbours)}


def random_inputs(seed, batch=2, num_boxes=8, num_classes=3, img=64, scale=1.0):
    """Raw level outputs [B, ny, nx, 3, 5 + nc] and padded targets with clustered boxes (shared cells)."""
    rng = np.random.default_rng(seed)
    raws = [
        rng.normal(size=(batch, img // s, img // s, 3, 5 + num_classes)).astype(np.float32) * scale for s in STRIDES
    ]
    xy = rng.uniform(0.05, 0.95, size=(batch, num_boxes, 2))
    half = num_boxes // 2
    xy[:, half:] = np.clip(xy[:, : num_boxes - half] + rng.normal(0, 0.02, (batch, num_boxes - half, 2)), 0.01, 0.99)
    wh = np.exp(rng.uniform(np.log(0.05), np.log(0.9), size=(batch, num_boxes, 2)))
    boxes = np.concatenate([xy, wh], -1).astype(np.float32)
    classes = rng.integers(0, num_classes, size=(batch, num_boxes)).astype(np.int32)
    valid = rng.uniform(size=(batch, num_boxes)) < 0.8
    return raws, boxes, classes, valid


@functools.cache
def loss_fn(num_classes=3, img=64, config=LossConfig()):
    """Jitted ``(raws, boxes, classes, valid) -> (loss, parts)``, one per setting (eager dispatch is slow)."""
    return jax.jit(functools.partial(yolo_loss, num_classes=num_classes, img_size=img, config=config))


@functools.cache
def loss_and_grad(num_classes=3, img=64, config=LossConfig()):
    """Jitted ``((loss, parts), grads w.r.t. raws)``."""
    partial = functools.partial(yolo_loss, num_classes=num_classes, img_size=img, config=config)
    return jax.jit(jax.value_and_grad(partial, has_aux=True))


# --- gains -------------------------------------------------------------------------------------------------------


def test_scaled_gains_voc_at_320():
    gains = scaled_gains(LossConfig(), num_classes=20, img_size=320)
    assert gains == pytest.approx({"box": 0.05, "cls": 0.125, "obj": 0.25})


def test_scaled_gains_coco_at_640_and_level_count():
    assert scaled_gains(LossConfig(), 80, 640) == pytest.approx({"box": 0.05, "cls": 0.5, "obj": 1.0})
    four_levels = scaled_gains(LossConfig(), 80, 640, num_levels=4)
    assert four_levels == pytest.approx({"box": 0.0375, "cls": 0.375, "obj": 0.75})


def test_loss_config_rejects_bad_values():
    with pytest.raises(ValueError, match="anchor_t"):
        LossConfig(anchor_t=1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        LossConfig(label_smoothing=1.5)


# --- build_targets -----------------------------------------------------------------------------------------------

BOX = [[[100.3, 60.7, 50.0, 60.0]]]  # 50×60 px centred at (100.3, 60.7) in a 320 image


def test_hand_placed_box_p3():
    # grid (12.5375, 7.5875), wh (6.25, 7.5): anchor 0 (1.25, 1.625) has ratio 5 ≥ 4; right and down neighbours.
    _, pos = positives(BOX, 0)
    assert pos == cells((1, 2), (7, 12), (7, 13), (8, 12))


def test_hand_placed_box_p4():
    # grid (6.26875, 3.79375), wh (3.125, 3.75): every anchor passes; left and down neighbours.
    _, pos = positives(BOX, 1)
    assert pos == cells((0, 1, 2), (3, 6), (3, 5), (4, 6))


def test_hand_placed_box_p5():
    # grid (3.134375, 1.896875), wh (1.5625, 1.875): anchor 2 (11.66, 10.19) has ratio 7.5; left and down.
    _, pos = positives(BOX, 2)
    assert pos == cells((0, 1), (1, 3), (1, 2), (2, 3))


def test_box_targets_use_unclamped_cell_and_anchor_of_the_candidate():
    t, _ = positives(BOX, 0)
    k = int(np.nonzero(np.asarray(t.mask[0] & (t.gi[0] == 13) & (t.anchor[0] == 1)))[0][0])
    np.testing.assert_allclose(t.tbox[0, k], [12.5375 - 13, 7.5875 - 7, 6.25, 7.5], rtol=1e-5)
    np.testing.assert_allclose(t.anchor_wh[0, k], [2.0, 3.75])


def test_candidate_order_is_offset_then_anchor_then_box():
    boxes = jnp.full((1, 2, 4), 0.5)
    t = build_targets(
        boxes, jnp.array([[3, 7]]), jnp.ones((1, 2), bool), grid_shape=(4, 4), anchors_grid=ANCHORS[0] / 8, anchor_t=4.0
    )
    k = np.arange(5 * 3 * 2)
    np.testing.assert_array_equal(t.anchor[0], (k // 2) % 3)
    np.testing.assert_array_equal(t.cls[0], np.where(k % 2 == 0, 3, 7))


def test_left_neighbour_needs_gx_above_one():
    # At P3 (stride 8): gx = 0.3 and gx = 1.0 have frac < 0.5 but no left cell; gx = 1.25 has one (cell 0).
    for gx, expected in [(0.3, {0}), (1.0, {1}), (1.25, {1, 0})]:
        _, pos = positives([[[gx * 8, 100.0, 16.0, 30.0]]], 0)
        gj_centre = int(100.0 / 8)
        assert {gi for (_, a, gj, gi) in pos if a == 1 and gj == gj_centre} == expected, gx


def test_right_and_down_neighbours_need_inverse_above_one():
    # P3 grid 40: gx = 39.7 (gx' = 0.3) has no right cell; gy = 38.6 (gy' = 1.4) has a lower cell (39).
    _, pos = positives([[[39.7 * 8, 38.6 * 8, 16.0, 30.0]]], 0)
    assert {(gj, gi) for (_, a, gj, gi) in pos if a == 1} == {(38, 39), (39, 39)}


def test_cells_are_clamped_for_indexing_only():
    # Centre at gx = 40.2 (outside the 40-wide grid): index clamped to 39, tbox keeps gx − 40.
    t, pos = positives([[[40.2 * 8, 100.0, 16.0, 30.0]]], 0)
    assert {gi for (*_, gi) in pos} == {39}
    k = int(np.nonzero(np.asarray(t.mask[0]))[0][0])
    assert float(t.tbox[0, k, 0]) == pytest.approx(0.2, abs=1e-4)


def test_padding_rows_never_create_positives():
    boxes = [[[100.3, 60.7, 50.0, 60.0], [200.0, 200.0, 40.0, 40.0]]]
    t, pos = positives(boxes, 1, valid=[[False, False]])
    assert not pos and not bool(t.mask.any())


def test_padding_rows_do_not_change_the_loss():
    raws, boxes, classes, valid = random_inputs(0)
    padded = (
        np.concatenate([boxes, np.full_like(boxes[:, :3], 0.5)], 1),
        np.concatenate([classes, np.full_like(classes[:, :3], 99)], 1),
        np.concatenate([valid, np.zeros_like(valid[:, :3])], 1),
    )
    loss, parts = loss_fn()(raws, boxes, classes, valid)
    padded_loss, padded_parts = loss_fn()(raws, *padded)
    np.testing.assert_allclose(padded_loss, loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), padded_parts, parts)


# --- CIoU --------------------------------------------------------------------------------------------------------


def ciou_reference(b1, b2, eps=1e-7):
    """float64 numpy CIoU of (cx, cy, w, h) boxes; returns (ciou, alpha)."""
    b1, b2 = np.asarray(b1, np.float64), np.asarray(b2, np.float64)
    lo1, hi1 = b1[..., :2] - b1[..., 2:] / 2, b1[..., :2] + b1[..., 2:] / 2
    lo2, hi2 = b2[..., :2] - b2[..., 2:] / 2, b2[..., :2] + b2[..., 2:] / 2
    inter = np.prod(np.clip(np.minimum(hi1, hi2) - np.maximum(lo1, lo2), 0, None), -1)
    iou = inter / (np.prod(b1[..., 2:], -1) + np.prod(b2[..., 2:], -1) - inter + eps)
    c2 = np.sum((np.maximum(hi1, hi2) - np.minimum(lo1, lo2)) ** 2, -1) + eps
    rho2 = np.sum((b2[..., :2] - b1[..., :2]) ** 2, -1)
    v = 4 / np.pi**2 * (np.arctan(b2[..., 2] / b2[..., 3]) - np.arctan(b1[..., 2] / b1[..., 3])) ** 2
    alpha = v / (v - iou + 1 + eps)
    return iou - rho2 / c2 - alpha * v, alpha


def test_ciou_of_identical_boxes_is_one():
    box = jnp.array([3.0, 4.0, 2.0, 5.0])
    assert float(bbox_ciou(box, box)) == pytest.approx(1.0, abs=1e-6)


def test_ciou_of_disjoint_boxes_is_negative():
    assert float(bbox_ciou(jnp.array([0.0, 0.0, 1.0, 1.0]), jnp.array([5.0, 0.0, 1.0, 3.0]))) < 0


def test_ciou_hand_computed_cases():
    # Same centre, same aspect: IoU = 1/4, no distance or aspect term.
    got = float(bbox_ciou(jnp.array([0.0, 0.0, 2.0, 2.0]), jnp.array([0.0, 0.0, 1.0, 1.0])))
    assert got == pytest.approx(0.25, abs=1e-6)
    # 2×2 squares one apart: IoU = 2/6, ρ² = 1, enclosing 3×2 so c² = 13.
    got = float(bbox_ciou(jnp.array([0.0, 0.0, 2.0, 2.0]), jnp.array([1.0, 0.0, 2.0, 2.0])))
    assert got == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)
    # Same centre, 2×2 and 4×1: IoU = 2/(4 + 4 − 2), ρ = 0, v = 4/π²(atan 4 − atan 1)²,
    # so CIoU = IoU − v²/(v − IoU + 1).
    iou, v = 2 / 6, 4 / math.pi**2 * (math.atan(4.0) - math.atan(1.0)) ** 2
    got = float(bbox_ciou(jnp.array([0.0, 0.0, 2.0, 2.0]), jnp.array([0.0, 0.0, 4.0, 1.0])))
    assert got == pytest.approx(iou - v * v / (v - iou + 1), abs=1e-6)


def test_ciou_matches_float64_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    b1 = np.concatenate([rng.uniform(0, 4, (500, 2)), rng.uniform(0.1, 4, (500, 2))], 1)
    b2 = np.concatenate([b1[:, :2] + rng.normal(0, 0.7, (500, 2)), rng.uniform(0.1, 4, (500, 2))], 1)
    expected, alpha = ciou_reference(b1, b2)
    assert (alpha > 0.05).sum() > 100  # the α·v term matters in this sample
    got = bbox_ciou(jnp.asarray(b1, jnp.float32), jnp.asarray(b2, jnp.float32))
    np.testing.assert_allclose(got, expected, atol=2e-6)


def test_ciou_gradient_treats_alpha_as_constant():
    b1, b2 = np.array([0.3, 0.2, 1.5, 0.7]), np.array([0.0, 0.1, 1.0, 1.4])
    _, alpha = ciou_reference(b1, b2)

    def frozen(x):  # CIoU with α fixed at its value at b1
        ciou, a = ciou_reference(x, b2)
        v = 4 / np.pi**2 * (np.arctan(b2[2] / b2[3]) - np.arctan(x[2] / x[3])) ** 2
        return ciou + a * v - alpha * v

    h = 1e-6
    numeric = np.array([(frozen(b1 + h * e) - frozen(b1 - h * e)) / (2 * h) for e in np.eye(4)])
    grad = jax.grad(lambda x: bbox_ciou(x, jnp.asarray(b2, jnp.float32)))(jnp.asarray(b1, jnp.float32))
    np.testing.assert_allclose(grad, numeric, atol=1e-4)


# --- objectness targets ------------------------------------------------------------------------------------------


def sequential_objectness(iou, t, grid_shape, num_anchors):
    """Writes clamp(iou, 0) one positive at a time in list order (torch's index_put on one image at a time)."""
    t = jax.tree.map(np.asarray, t)
    tobj = np.zeros((iou.shape[0], *grid_shape, num_anchors), np.float32)
    for b, k in zip(*np.nonzero(t.mask)):
        tobj[b, t.gj[b, k], t.gi[b, k], t.anchor[b, k]] = max(iou[b, k], 0.0)
    return tobj


def test_duplicate_cells_last_write_wins_like_a_sequential_loop():
    rng = np.random.default_rng(1)
    boxes = np.concatenate([rng.uniform(0.4, 0.6, (2, 12, 2)), rng.uniform(0.1, 0.3, (2, 12, 2))], -1)
    t = build_targets(
        jnp.asarray(boxes, jnp.float32),
        jnp.zeros((2, 12), jnp.int32),
        jnp.ones((2, 12), bool),
        grid_shape=(8, 8),
        anchors_grid=ANCHORS[1] / 16,
        anchor_t=4.0,
    )
    iou = jnp.asarray(rng.uniform(-0.2, 1.0, t.mask.shape), jnp.float32)
    expected = sequential_objectness(np.asarray(iou), t, (8, 8), 3)
    got = objectness_targets(iou, t, (8, 8), 3)
    np.testing.assert_array_equal(got, expected)
    reverse = jax.tree.map(lambda x: x[:, ::-1], t)  # the first-write-wins answer differs: the test has collisions
    assert not np.array_equal(sequential_objectness(np.asarray(iou)[:, ::-1], reverse, (8, 8), 3), expected)


def test_neighbour_offset_overrides_a_later_box_centre():
    # Box 0 at gx = 2.3: centre cell 2, left cell 1. Box 1 at gx = 1.7: centre cell 1, right cell 2.
    # The later offset wins in both cells, whatever the box order.
    boxes = jnp.array([[[2.3 / 8, 4.7 / 8, 0.25, 0.25], [1.7 / 8, 4.7 / 8, 0.25, 0.25]]])
    t = build_targets(
        boxes,
        jnp.zeros((1, 2), jnp.int32),
        jnp.ones((1, 2), bool),
        grid_shape=(8, 8),
        anchors_grid=ANCHORS[1] / 16,
        anchor_t=4.0,
    )
    iou = jnp.where(jnp.arange(t.mask.shape[1]) % 2 == 0, 0.9, 0.3)[None]  # box 0 → 0.9, box 1 → 0.3
    tobj = objectness_targets(iou, t, (8, 8), 3)
    assert float(tobj[0, 4, 1, 0]) == pytest.approx(0.9)  # box 0's left (offset 1) over box 1's centre
    assert float(tobj[0, 4, 2, 0]) == pytest.approx(0.3)  # box 1's right (offset 3) over box 0's centre


# --- loss --------------------------------------------------------------------------------------------------------


def test_objectness_only_loss_of_zero_logits_is_log2_times_balance():
    batch = 3
    raws = [jnp.zeros((batch, IMG // s, IMG // s, 3, 25)) for s in STRIDES]
    empty = (jnp.zeros((batch, 4, 4)), jnp.zeros((batch, 4), jnp.int32), jnp.zeros((batch, 4), bool))
    loss, parts = loss_fn(num_classes=20, img=IMG)(raws, *empty)
    obj = math.log(2) * sum(LossConfig().balance) * 0.25
    assert float(parts["obj"]) == pytest.approx(obj, rel=1e-6)
    assert float(parts["box"]) == 0.0 and float(parts["cls"]) == 0.0
    assert float(loss) == pytest.approx(batch * obj, rel=1e-6)


def test_loss_is_finite_positive_with_finite_gradient():
    raws, boxes, classes, valid = random_inputs(2, scale=3.0)
    (loss, parts), grads = loss_and_grad()(raws, boxes, classes, valid)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(float(v) > 0 for v in parts.values())
    assert all(np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).max() > 0 for g in grads)


def test_gradient_is_finite_with_nan_in_padding_rows():
    raws, boxes, classes, valid = random_inputs(3)
    boxes = np.where(valid[..., None], boxes, np.nan).astype(np.float32)
    _, grads = loss_and_grad()(raws, boxes, classes, valid)
    assert all(np.isfinite(np.asarray(g)).all() for g in grads)


def test_loss_decreases_under_gradient_steps_on_raw_outputs():
    raws, boxes, classes, valid = random_inputs(4)
    optimizer = optax.adam(0.1)
    opt_state = optimizer.init(raws)
    history = []
    for _ in range(20):
        (loss, parts), grads = loss_and_grad()(raws, boxes, classes, valid)
        history.append((float(loss), {k: float(v) for k, v in parts.items()}))
        updates, opt_state = optimizer.update(grads, opt_state)
        raws = optax.apply_updates(raws, updates)
    (first, first_parts), (last, last_parts) = history[0], history[-1]
    assert last < 0.5 * first
    assert all(last_parts[k] < first_parts[k] for k in first_parts)


def test_total_scales_with_batch_size_and_components_do_not():
    raws, boxes, classes, valid = random_inputs(6)
    twice = (
        [np.concatenate([r, r]) for r in raws],
        np.concatenate([boxes, boxes]),
        np.concatenate([classes, classes]),
        np.concatenate([valid, valid]),
    )
    loss, parts = loss_fn()(raws, boxes, classes, valid)
    loss2, parts2 = loss_fn()(*twice)
    np.testing.assert_allclose(loss2, 2 * loss, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), parts2, parts)


def test_bfloat16_outputs_give_a_float32_loss():
    raws, boxes, classes, valid = random_inputs(7)
    low = [jnp.asarray(r, jnp.bfloat16) for r in raws]
    loss, parts = loss_fn()(low, boxes, classes, valid)
    expected, _ = loss_fn()([r.astype(jnp.float32) for r in low], boxes, classes, valid)
    assert loss.dtype == jnp.float32 and all(v.dtype == jnp.float32 for v in parts.values())
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_single_class_has_no_class_loss():
    raws, boxes, classes, valid = random_inputs(8, num_classes=1)
    _, parts = loss_fn(num_classes=1)(raws, boxes, np.zeros_like(classes), valid)
    assert float(parts["cls"]) == 0.0 and float(parts["box"]) > 0


def test_bad_shapes_name_the_argument():
    raws, boxes, classes, valid = random_inputs(9)
    shape = r"raw_levels\[0\]: got \(2, 8, 8, 3, 8\); accepted: an array"
    with pytest.raises(ValueError, match=rf"(?m)^{shape} \[B, ny, nx, 3, 9\]$"):
        loss_fn(num_classes=4)(raws, boxes, classes, valid)
    with pytest.raises(
        ValueError, match=rf"(?m)^{shape} \[B, 16, 16, 3, 8\] \(the grid of img_size 128 at stride 8\)$"
    ):
        loss_fn(img=128)(raws, boxes, classes, valid)
    with pytest.raises(
        ValueError, match=r"(?m)^config\.balance: got \(4\.0, 1\.0\); accepted: 3 gains, one per level$"
    ):
        loss_fn(config=LossConfig(balance=(4.0, 1.0)))(raws, boxes, classes, valid)


# --- independent torch reference ---------------------------------------------------------------------------------


def torch_reference(raws, boxes, classes, valid, num_classes, img, label_smoothing):
    """Loop-based float64 YOLOv5 loss written from the spec: positives listed offset → anchor → (image, box),
    objectness written one positive at a time. Returns (loss, [box, obj, cls], grads per level)."""
    torch = pytest.importorskip("torch")
    gains = scaled_gains(LossConfig(), num_classes, img)
    cp, cn = 1 - label_smoothing / 2, label_smoothing / 2
    offsets = [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (-0.5, 0.0), (0.0, -0.5)]
    raws = [torch.tensor(r, dtype=torch.float64, requires_grad=True) for r in raws]
    lbox = lobj = lcls = torch.zeros((), dtype=torch.float64)
    for level, raw in enumerate(raws):
        batch, ny, nx, num_anchors, _ = raw.shape
        anchors = ANCHORS[level] / STRIDES[level]
        rows = []
        for o, (ox, oy) in enumerate(offsets):
            for a in range(num_anchors):
                for b in range(batch):
                    for m in range(boxes.shape[1]):
                        gx, gy = boxes[b, m, 0] * np.float32(nx), boxes[b, m, 1] * np.float32(ny)  # float32
                        gw, gh = boxes[b, m, 2] * nx, boxes[b, m, 3] * ny
                        ratios = [gw / anchors[a, 0], gh / anchors[a, 1]]
                        if not valid[b, m] or max(max(r, 1 / r) for r in ratios) >= 4.0:
                            continue
                        ix, iy = np.float32(nx) - gx, np.float32(ny) - gy
                        take = [
                            True,
                            gx % 1 < 0.5 and gx > 1,
                            gy % 1 < 0.5 and gy > 1,
                            ix % 1 < 0.5 and ix > 1,
                            iy % 1 < 0.5 and iy > 1,
                        ][o]
                        if take:
                            gi, gj = int(gx - np.float32(ox)), int(gy - np.float32(oy))
                            rows.append(
                                (
                                    b,
                                    a,
                                    min(max(gj, 0), ny - 1),
                                    min(max(gi, 0), nx - 1),
                                    [gx - gi, gy - gj, gw, gh],
                                    anchors[a],
                                    classes[b, m],
                                )
                            )
        tobj = torch.zeros(raw.shape[:4], dtype=torch.float64)
        if rows:
            b, a, gj, gi, tbox, anch, cls = (list(x) for x in zip(*rows))
            pred = raw[b, gj, gi, a]
            pxy = 2 * pred[:, :2].sigmoid() - 0.5
            pwh = (2 * pred[:, 2:4].sigmoid()) ** 2 * torch.tensor(np.array(anch), dtype=torch.float64)
            tbox = np.array(tbox, np.float64)
            p_lo, p_hi = pxy - pwh / 2, pxy + pwh / 2
            t_lo, t_hi = (torch.tensor(tbox[:, :2] - tbox[:, 2:] / 2), torch.tensor(tbox[:, :2] + tbox[:, 2:] / 2))
            inter = (torch.minimum(p_hi, t_hi) - torch.maximum(p_lo, t_lo)).clamp(min=0).prod(1)
            iou = inter / (pwh.prod(1) + torch.tensor(tbox[:, 2:].prod(1)) - inter + 1e-7)
            c2 = ((torch.maximum(p_hi, t_hi) - torch.minimum(p_lo, t_lo)) ** 2).sum(1) + 1e-7
            rho2 = ((pxy - torch.tensor(tbox[:, :2])) ** 2).sum(1)
            t_aspect = torch.atan(torch.tensor(tbox[:, 2] / tbox[:, 3]))
            v = 4 / math.pi**2 * (t_aspect - torch.atan(pwh[:, 0] / pwh[:, 1])) ** 2
            alpha = (v / (v - iou + 1 + 1e-7)).detach()
            ciou = iou - rho2 / c2 - alpha * v
            lbox = lbox + (1 - ciou).mean()
            for k in range(len(rows)):
                tobj[b[k], gj[k], gi[k], a[k]] = ciou[k].detach().clamp(min=0)
            if num_classes > 1:
                tcls = torch.full((len(rows), num_classes), cn, dtype=torch.float64)
                tcls[range(len(rows)), cls] = cp
                lcls = lcls + torch.nn.functional.binary_cross_entropy_with_logits(pred[:, 5:], tcls)
        obj = torch.nn.functional.binary_cross_entropy_with_logits(raw[..., 4], tobj)
        lobj = lobj + LossConfig().balance[level] * obj
    parts = [lbox * gains["box"], lobj * gains["obj"], lcls * gains["cls"]]
    loss = sum(parts) * raws[0].shape[0]
    loss.backward()
    return loss.item(), [p.item() for p in parts], [r.grad.numpy() for r in raws]


def test_matches_independent_torch_reference_with_label_smoothing():
    label_smoothing = 0.1
    raws, boxes, classes, valid = random_inputs(10, batch=2, num_boxes=6, num_classes=4, scale=2.0)
    expected, expected_parts, expected_grads = torch_reference(raws, boxes, classes, valid, 4, 64, label_smoothing)
    f = loss_and_grad(num_classes=4, config=LossConfig(label_smoothing=label_smoothing))
    (loss, parts), grads = f(raws, boxes, classes, valid)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose([parts["box"], parts["obj"], parts["cls"]], expected_parts, rtol=1e-5)
    for g, e in zip(grads, expected_grads):
        np.testing.assert_allclose(g, e, atol=1e-6 * np.abs(e).max())
