"""YOLOv5's non-maximum suppression (``utils/general.non_max_suppression``, v7.0) as a jittable function."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from snnjax.boxes import box_iou, xywh_to_xyxy
from snnjax.checks import check, integer, is_int, number

MAX_CANDIDATES = 30000  # YOLOv5's max_nms


def _candidates(decoded: jax.Array, conf_thres: float, multi_label: bool):
    """Scores, classes and box indices of every (box, class) candidate, flattened box-major: ``[B, K]`` each.

    score = obj · cls; a candidate needs obj > conf_thres and score > conf_thres. Multi-label: every
    class of a box is a candidate; otherwise only its best class. Invalid candidates score −inf.
    """
    obj, cls = decoded[..., 4], decoded[..., 5:]
    scores = cls * obj[..., None]
    n, nc = scores.shape[1:]
    if multi_label:
        flat = scores.reshape(scores.shape[0], n * nc)
        classes = jnp.broadcast_to(jnp.arange(n * nc) % nc, flat.shape)
        box_index = jnp.broadcast_to(jnp.arange(n * nc) // nc, flat.shape)
        valid = jnp.repeat(obj > conf_thres, nc, axis=1) & (flat > conf_thres)
        return jnp.where(valid, flat, -jnp.inf), classes, box_index
    best, classes = scores.max(-1), scores.argmax(-1)
    valid = (obj > conf_thres) & (best > conf_thres)
    return jnp.where(valid, best, -jnp.inf), classes, jnp.broadcast_to(jnp.arange(n), best.shape)


def _greedy_nms(boxes: jax.Array, classes: jax.Array, num_valid: jax.Array, iou_thres: float, max_det: int, chunk: int):
    """Greedy class-aware NMS over candidates sorted by score: boxes ``[B, K, 4]``, classes ``[B, K]``,
    the first ``num_valid [B]`` of each row being real.

    Candidate j is kept iff no kept i < j has IoU(i, j) > iou_thres and class(i) = class(j): exactly
    torchvision's ``nms`` (per class). The candidates are visited in chunks of ``chunk``: a chunk is
    first pruned by every box kept so far (one ``[max_det, chunk]`` IoU block), then each step keeps its
    first alive candidate and kills the ones it suppresses. Everything stops at ``max_det`` kept boxes,
    so the cost is O(max_det · B · chunk) per visited chunk instead of O(K²). Returns kept indices
    ``[B, max_det]`` (best first) and counts ``[B]``.
    """
    batch, k = classes.shape
    chunk = min(chunk, k)
    pad = -k % chunk
    boxes = jnp.pad(boxes, ((0, 0), (0, pad), (0, 0)))
    classes = jnp.pad(classes, ((0, 0), (0, pad)), constant_values=-1)
    images, positions = jnp.arange(batch), jnp.arange(chunk)

    def suppresses(box_a, class_a, box_b, class_b):
        return (box_iou(box_a, box_b) > iou_thres) & (class_a == class_b)

    def visit_chunk(state):
        c, keep, count = state
        start = c * chunk
        seg_boxes = jax.lax.dynamic_slice_in_dim(boxes, start, chunk, axis=1)
        seg_classes = jax.lax.dynamic_slice_in_dim(classes, start, chunk, axis=1)
        kept_boxes = jnp.take_along_axis(boxes, keep[..., None], axis=1)[:, :, None]
        kept_classes = jnp.where(jnp.arange(max_det) < count[:, None], jnp.take_along_axis(classes, keep, 1), -2)
        pruned = suppresses(kept_boxes, kept_classes[..., None], seg_boxes[:, None], seg_classes[:, None]).any(1)
        alive = (start + positions < num_valid[:, None]) & (count < max_det)[:, None] & ~pruned

        def step(inner):
            alive, keep, count = inner
            active = alive.any(-1)
            i = jnp.argmax(alive, axis=-1)
            kill = suppresses(seg_boxes[images, i][:, None], seg_classes[images, i][:, None], seg_boxes, seg_classes)
            keep = keep.at[images, jnp.where(active, count, max_det)].set(start + i, mode="drop")
            count = count + active
            return alive & ~kill & (positions != i[:, None]) & (count < max_det)[:, None], keep, count

        _, keep, count = jax.lax.while_loop(lambda s: s[0].any(), step, (alive, keep, count))
        return c + 1, keep, count

    def unfinished(state):
        c, _, count = state
        return jnp.any((c * chunk < num_valid) & (count < max_det))

    init = (jnp.int32(0), jnp.zeros((batch, max_det), jnp.int32), jnp.zeros((batch,), jnp.int32))
    _, keep, count = jax.lax.while_loop(unfinished, visit_chunk, init)
    return keep, count


@functools.partial(
    jax.jit,
    static_argnames=(
        "conf_thres",
        "iou_thres",
        "multi_label",
        "max_det",
        "classes",
        "agnostic",
        "max_candidates",
        "chunk",
    ),
)
def non_max_suppression(
    decoded: jax.Array,
    *,
    conf_thres: float = 0.001,
    iou_thres: float = 0.6,
    multi_label: bool = True,
    max_det: int = 300,
    classes: tuple[int, ...] | None = None,
    agnostic: bool = False,
    max_candidates: int = MAX_CANDIDATES,
    chunk: int = 1024,
) -> tuple[jax.Array, jax.Array]:
    """YOLOv5 NMS (docs/yolov5n.md §4.1) on decoded predictions ``[B, N, 5 + nc]`` (xywh pixels, obj, class probs).

    1. candidates: obj > conf_thres; score = obj·cls; multi-label: each (box, class) with
       score > conf_thres, else the best class per box if its score > conf_thres; with ``classes``,
       only candidates of those class indices (YOLOv5's ``classes`` filter);
    2. xywh -> xyxy; keep the ``max_candidates`` best by score (YOLOv5's max_nms = 30,000; ties keep
       the lower box index, then the lower class);
    3. class-aware greedy NMS, suppressing IoU > iou_thres within a class (per-class masking,
       equivalent to YOLOv5's class-offset trick without its float32 rounding at large offsets), or
       across classes with ``agnostic``;
    4. the first ``max_det`` survivors by score. No wall-clock limit.

    ``chunk`` (candidates per step of the greedy loop) only trades speed: results do not depend on it.
    Computed in float32; jitted, with all keyword arguments static; callable inside jit. Returns detections
    ``[B, max_det, 6]`` = (x1, y1, x2, y2, score, class), best first, rows ≥ count zero, and
    ``count [B]`` int32.
    """
    check(
        decoded.ndim == 3 and decoded.shape[-1] >= 6, "decoded", decoded.shape, "an array [B, N, 5 + nc] with nc >= 1"
    )
    number(0, 1, high_open=True)("conf_thres", conf_thres)
    number(0, 1)("iou_thres", iou_thres)
    for name, value in (("max_det", max_det), ("max_candidates", max_candidates), ("chunk", chunk)):
        integer(1)(name, value)
    nc = decoded.shape[-1] - 5
    check(
        classes is None or (isinstance(classes, tuple) and all(is_int(c) and 0 <= c < nc for c in classes)),
        "classes",
        classes,
        f"None or a tuple of class indices in [0, {nc})",
    )
    decoded = decoded.astype(jnp.float32)
    scores, labels, box_index = _candidates(decoded, conf_thres, multi_label)
    if classes is not None:
        scores = jnp.where(jnp.isin(labels, jnp.asarray(classes)), scores, -jnp.inf)
    top, order = jax.lax.top_k(scores, min(max_candidates, scores.shape[1]))
    labels = jnp.take_along_axis(labels, order, axis=1)
    box_index = jnp.take_along_axis(box_index, order, axis=1)
    boxes = jnp.take_along_axis(xywh_to_xyxy(decoded[..., :4]), box_index[..., None], axis=1)
    groups = jnp.zeros_like(labels) if agnostic else labels
    keep, count = _greedy_nms(boxes, groups, (top > -jnp.inf).sum(-1), iou_thres, max_det, chunk)
    gather = lambda x: jnp.take_along_axis(x, keep, axis=1)
    detections = jnp.concatenate(
        [
            jnp.take_along_axis(boxes, keep[..., None], axis=1),
            gather(top)[..., None],
            gather(labels)[..., None].astype(top.dtype),
        ],
        -1,
    )
    filled = jnp.arange(max_det) < count[:, None]
    return jnp.where(filled[..., None], detections, 0), count
