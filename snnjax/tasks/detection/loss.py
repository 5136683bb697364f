"""The YOLOv5 v7.0 detection loss (docs/yolov5n.md §3.2–3.4), jittable over a padded box list.

Ground truth per image is padded to M boxes: ``boxes`` [B, M, 4] normalised (cx, cy, w, h) of the
square ``img_size`` input, ``classes`` [B, M] int32, ``valid`` [B, M] bool (False on padding rows).
Each level's positives form a fixed list of K = 5·na·M candidates (offset, anchor, box) with a mask,
so shapes never depend on the data and nothing syncs with the host.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import Accepts, check, integer, number
from snnjax.models.yolo import ANCHORS, STRIDES  # [level, anchor, (w, h)] pixels; strides of P3, P4, P5
from snnjax.settings import Settings, setting

# Cell offsets of the neighbour-cell trick (g = 0.5): centre, left, up, right, down.
OFFSETS = 0.5 * np.array([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
_SAFE_BOX = np.array([0.5, 0.5, 1.0, 1.0], np.float32)  # stands in for the target of masked candidates


def _positive_weights(values) -> bool:
    return isinstance(values, tuple) and len(values) > 0 and all(number(0, low_open=True).test(v) for v in values)


@dataclasses.dataclass(frozen=True)
class LossConfig(Settings):
    """hyp.scratch-low gains (before :func:`scaled_gains`), the anchor ratio threshold, the per-level
    objectness balance (one entry per level, P3 first) and the class label smoothing ε."""

    box: float = setting(0.05, "box (CIoU) loss gain", accepts=number(0))
    cls: float = setting(0.5, "classification loss gain", accepts=number(0))
    obj: float = setting(1.0, "objectness loss gain", accepts=number(0))
    anchor_t: float = setting(4.0, "anchor-to-box size ratio threshold", accepts=number(1, low_open=True))
    balance: tuple[float, ...] = setting(
        (4.0, 1.0, 0.4), "objectness weight of each level, P3 first", accepts=Accepts(_positive_weights, "numbers > 0")
    )
    label_smoothing: float = setting(0.0, "class label smoothing ε", accepts=number(0, 1))


def scaled_gains(config: LossConfig, num_classes: int, img_size: int, num_levels: int = 3) -> dict[str, float]:
    """train.py's gain scaling: box·3/nl, cls·nc/80·3/nl, obj·(img_size/640)²·3/nl."""
    level_scale = 3.0 / num_levels
    return {
        "box": config.box * level_scale,
        "cls": config.cls * num_classes / 80.0 * level_scale,
        "obj": config.obj * (img_size / 640.0) ** 2 * level_scale,
    }


class Targets(NamedTuple):
    """Candidate positives of one level; axis 1 (K = 5·na·M) is ordered (offset, anchor, box), k =
    (o·na + a)·M + m, which is the order YOLOv5's build_targets lists one image's positives in."""

    mask: jax.Array  # [B, K] bool: passes the anchor filter and the neighbour condition
    anchor: jax.Array  # [B, K] int32 anchor index
    gj: jax.Array  # [B, K] int32 cell row, clamped to [0, ny − 1]
    gi: jax.Array  # [B, K] int32 cell column, clamped to [0, nx − 1]
    tbox: jax.Array  # [B, K, 4] (gxy − gij, gwh) in grid units, with the unclamped gij
    anchor_wh: jax.Array  # [B, K, 2] anchor in grid units
    cls: jax.Array  # [B, K] int32


def build_targets(
    boxes: jax.Array,
    classes: jax.Array,
    valid: jax.Array,
    *,
    grid_shape: tuple[int, int],
    anchors_grid: jax.Array,
    anchor_t: float,
) -> Targets:
    """YOLOv5's build_targets for one level (docs/yolov5n.md §3.3), every candidate kept under a mask.

    gxy, gwh = (x, y, w, h)·(nx, ny, nx, ny); a (box, anchor) pair passes if max(r, 1/r) < anchor_t for
    r = gwh/anchor; besides the centre cell it takes the left/up cell if frac(gxy) < 0.5 and gxy > 1 and the
    right/down cell if the same holds for (nx, ny) − gxy; gij = trunc(gxy − offset) (torch's ``.long()``,
    which is floor for the centres inside the image). boxes [B, M, 4]; anchors_grid [na, 2].
    """
    ny, nx = grid_shape
    batch, num_boxes = classes.shape
    anchors_grid = jnp.asarray(anchors_grid, jnp.float32)
    num_anchors = anchors_grid.shape[0]
    gain = jnp.array([nx, ny], jnp.float32)
    gxy = boxes[..., :2].astype(jnp.float32) * gain  # [B, M, 2]
    gwh = boxes[..., 2:].astype(jnp.float32) * gain
    ratio = gwh[:, None] / anchors_grid[None, :, None]  # [B, na, M, 2]
    pair = valid[:, None] & (jnp.max(jnp.maximum(ratio, 1.0 / ratio), axis=-1) < anchor_t)
    inverse = gain - gxy
    near = (jnp.mod(gxy, 1.0) < 0.5) & (gxy > 1.0)  # left, up
    far = (jnp.mod(inverse, 1.0) < 0.5) & (inverse > 1.0)  # right, down
    use = jnp.stack([jnp.ones_like(near[..., 0]), near[..., 0], near[..., 1], far[..., 0], far[..., 1]], 1)
    mask = use[:, :, None] & pair[:, None]  # [B, 5, na, M]
    gij = (gxy[:, None] - OFFSETS[None, :, None]).astype(jnp.int32)  # [B, 5, M, 2]
    tbox = jnp.concatenate([gxy[:, None] - gij, jnp.broadcast_to(gwh[:, None], gij.shape)], -1)

    shape = (batch, 5, num_anchors, num_boxes)
    flat = lambda x, *trailing: jnp.broadcast_to(x, shape + trailing).reshape(batch, -1, *trailing)
    return Targets(
        mask=flat(mask),
        anchor=flat(jnp.arange(num_anchors, dtype=jnp.int32)[:, None]),
        gj=flat(jnp.clip(gij[:, :, None, :, 1], 0, ny - 1)),
        gi=flat(jnp.clip(gij[:, :, None, :, 0], 0, nx - 1)),
        tbox=flat(tbox[:, :, None], 4),
        anchor_wh=flat(anchors_grid[:, None], 2),
        cls=flat(classes[:, None, None].astype(jnp.int32)),
    )


def bbox_ciou(box1: jax.Array, box2: jax.Array, eps: float = 1e-7) -> jax.Array:
    """Complete IoU of (cx, cy, w, h) boxes [..., 4], as YOLOv5 v7.0 ``bbox_iou(CIoU=True)``.

    CIoU = IoU − ρ²/c² − α·v, IoU = inter/(union + eps), c² = cw² + ch² + eps (enclosing box diagonal),
    v = (4/π²)(atan(w2/h2) − atan(w1/h1))², α = v/(v − IoU + 1 + eps) without gradient.
    """
    (x1, y1, w1, h1), (x2, y2, w2, h2) = jnp.moveaxis(box1, -1, 0), jnp.moveaxis(box2, -1, 0)
    b1x1, b1x2, b1y1, b1y2 = x1 - w1 / 2, x1 + w1 / 2, y1 - h1 / 2, y1 + h1 / 2
    b2x1, b2x2, b2y1, b2y2 = x2 - w2 / 2, x2 + w2 / 2, y2 - h2 / 2, y2 + h2 / 2
    inter = jnp.maximum(jnp.minimum(b1x2, b2x2) - jnp.maximum(b1x1, b2x1), 0.0) * jnp.maximum(
        jnp.minimum(b1y2, b2y2) - jnp.maximum(b1y1, b2y1), 0.0
    )
    iou = inter / (w1 * h1 + w2 * h2 - inter + eps)
    cw = jnp.maximum(b1x2, b2x2) - jnp.minimum(b1x1, b2x1)
    ch = jnp.maximum(b1y2, b2y2) - jnp.minimum(b1y1, b2y1)
    c2 = cw**2 + ch**2 + eps
    rho2 = ((b2x1 + b2x2 - b1x1 - b1x2) ** 2 + (b2y1 + b2y2 - b1y1 - b1y2) ** 2) / 4
    v = (4 / math.pi**2) * (jnp.arctan(w2 / h2) - jnp.arctan(w1 / h1)) ** 2
    alpha = jax.lax.stop_gradient(v / (v - iou + (1 + eps)))
    return iou - (rho2 / c2 + v * alpha)


def objectness_targets(iou: jax.Array, targets: Targets, grid_shape: tuple[int, int], num_anchors: int) -> jax.Array:
    """[B, ny, nx, na]: 0, and clamp(iou, 0) (no gradient) at each positive's cell. Where several positives
    share a cell, the one with the largest k wins: torch's sequential ``tobj[b, a, gj, gi] = iou`` over
    YOLOv5's positive list (sort_obj_iou False), whose per-image order is k's. iou: [B, K]."""
    ny, nx = grid_shape
    batch, num = iou.shape
    rows = jnp.arange(batch)[:, None]
    cell = (targets.gj * nx + targets.gi) * num_anchors + targets.anchor
    order = jnp.arange(num, dtype=jnp.int32)
    last = (
        jnp.full((batch, ny * nx * num_anchors), -1, jnp.int32).at[rows, cell].max(jnp.where(targets.mask, order, -1))
    )
    wins = targets.mask & (last[rows, cell] == order)
    value = jnp.where(wins, jnp.maximum(jax.lax.stop_gradient(iou), 0.0), 0.0)
    tobj = jnp.zeros((batch, ny * nx * num_anchors), jnp.float32).at[rows, cell].add(value)
    return tobj.reshape(batch, ny, nx, num_anchors)


def bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Elementwise max(x, 0) − x·z + log(1 + exp(−|x|)) (torch ``BCEWithLogitsLoss``, no reduction)."""
    return jnp.maximum(logits, 0.0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def level_losses(
    raw: jax.Array, targets: Targets, num_classes: int, label_smoothing: float = 0.0
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Unweighted (box, obj, cls) losses of one level, raw [B, ny, nx, na, 5 + nc] float32 (docs/yolov5n.md §3.4).

    box = mean over positives of 1 − CIoU(pbox, tbox), pxy = 2σ − 0.5, pwh = (2σ)²·anchor; obj = mean over
    all B·ny·nx·na cells of BCE(logit, objectness target); cls = mean over positives × nc of BCE against
    1 − ε/2 (true class) and ε/2 (others), 0 when nc = 1. A level without positives gives box = cls = 0.
    """
    batch, ny, nx, num_anchors, _ = raw.shape
    pred = raw[jnp.arange(batch)[:, None], targets.gj, targets.gi, targets.anchor]  # [B, K, 5 + nc]
    pxy = 2.0 * jax.nn.sigmoid(pred[..., :2]) - 0.5
    pwh = (2.0 * jax.nn.sigmoid(pred[..., 2:4])) ** 2 * targets.anchor_wh
    tbox = jnp.where(targets.mask[..., None], targets.tbox, _SAFE_BOX)
    iou = bbox_ciou(jnp.concatenate([pxy, pwh], -1), tbox)
    count = jnp.sum(targets.mask)
    box = jnp.sum(jnp.where(targets.mask, 1.0 - iou, 0.0)) / jnp.maximum(count, 1)

    tobj = objectness_targets(iou, targets, (ny, nx), num_anchors)
    obj = jnp.mean(bce_with_logits(raw[..., 4], tobj))

    if num_classes == 1:
        return box, obj, jnp.zeros((), jnp.float32)
    positive, negative = 1.0 - 0.5 * label_smoothing, 0.5 * label_smoothing
    tcls = jnp.where(jax.nn.one_hot(targets.cls, num_classes, dtype=jnp.bool_), positive, negative)
    per_candidate = jnp.sum(bce_with_logits(pred[..., 5:], tcls), axis=-1)
    cls = jnp.sum(jnp.where(targets.mask, per_candidate, 0.0)) / jnp.maximum(count * num_classes, 1)
    return box, obj, cls


def yolo_loss(
    raw_levels: Sequence[jax.Array],
    boxes: jax.Array,
    classes: jax.Array,
    valid: jax.Array,
    *,
    num_classes: int,
    img_size: int,
    anchors: np.ndarray = ANCHORS,
    strides: Sequence[int] = STRIDES,
    config: LossConfig = LossConfig(),
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """YOLOv5's ComputeLoss (docs/yolov5n.md §3.4): ``(loss, {"box", "obj", "cls"})`` in float32.

    lbox = Σ_i box_i, lobj = Σ_i balance_i·obj_i, lcls = Σ_i cls_i over the levels (P3 first), each times
    its :func:`scaled_gains` gain; loss = (lbox + lobj + lcls)·B. The components are returned gain-scaled
    but not times B, as YOLOv5 logs them. raw_levels: per level [B, ny, nx, na, 5 + nc], any float dtype;
    anchors: [levels, na, 2] pixels.
    """
    anchors = np.asarray(anchors, np.float32)
    _check_levels(raw_levels, num_classes, img_size, anchors, strides, config)
    gains = scaled_gains(config, num_classes, img_size, len(raw_levels))
    lbox = lobj = lcls = jnp.zeros((), jnp.float32)
    for raw, level_anchors, stride, balance in zip(raw_levels, anchors, strides, config.balance):
        raw = raw.astype(jnp.float32)
        targets = build_targets(
            boxes,
            classes,
            valid,
            grid_shape=raw.shape[1:3],
            anchors_grid=level_anchors / stride,
            anchor_t=config.anchor_t,
        )
        box, obj, cls = level_losses(raw, targets, num_classes, config.label_smoothing)
        lbox, lobj, lcls = lbox + box, lobj + balance * obj, lcls + cls
    components = {"box": lbox * gains["box"], "obj": lobj * gains["obj"], "cls": lcls * gains["cls"]}
    batch = raw_levels[0].shape[0]
    return (components["box"] + components["obj"] + components["cls"]) * batch, components


def _check_levels(raw_levels, num_classes, img_size, anchors, strides, config) -> None:
    """Raises InvalidValue, naming the argument, when the levels, anchors, strides and balance disagree."""
    integer(1)("num_classes", num_classes)
    num_levels = len(raw_levels)
    check(
        anchors.ndim == 3 and anchors.shape[0] == num_levels and anchors.shape[2] == 2,
        "anchors",
        anchors.shape,
        f"an array [{num_levels}, na, 2] (one row per level)",
    )
    check(len(strides) == num_levels, "strides", strides, f"{num_levels} strides, one per level")
    check(len(config.balance) == num_levels, "config.balance", config.balance, f"{num_levels} gains, one per level")
    na, no = anchors.shape[1], 5 + num_classes
    for i, (raw, stride) in enumerate(zip(raw_levels, strides)):
        check(
            raw.ndim == 5 and tuple(raw.shape[3:]) == (na, no),
            f"raw_levels[{i}]",
            raw.shape,
            f"an array [B, ny, nx, {na}, {no}]",
        )
        grid = f"{img_size / stride:g}"
        check(
            tuple(raw.shape[1:3]) == (img_size // stride,) * 2 and img_size % stride == 0,
            f"raw_levels[{i}]",
            raw.shape,
            f"an array [B, {grid}, {grid}, {na}, {no}] (the grid of img_size {img_size} at stride {stride})",
        )
