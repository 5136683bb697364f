"""Box geometry shared by the data pipeline, NMS and mAP: formats, IoU, and the letterbox inverse.

Formats: tfds ``BBox`` (ymin, xmin, ymax, xmax), corners xyxy, YOLO centre xywh. Every function acts
on the last axis of NumPy arrays (host) or JAX arrays (jittable) and keeps the units of its input.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import check

Array = np.ndarray | jax.Array


def _xp(*arrays):
    """The array namespace: jax.numpy when any argument is a JAX array (or tracer), else NumPy."""
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def bbox_to_xyxy(bbox: Array) -> Array:
    """tfds ``BBox`` ``(ymin, xmin, ymax, xmax)`` -> ``(x1, y1, x2, y2)``; also its own inverse."""
    return bbox[..., [1, 0, 3, 2]]


def xyxy_to_xywh(boxes: Array) -> Array:
    """(x1, y1, x2, y2) -> (centre x, centre y, w, h) = ((x1 + x2)/2, (y1 + y2)/2, x2 − x1, y2 − y1)."""
    xp = _xp(boxes)
    lo, hi = boxes[..., :2], boxes[..., 2:4]
    return xp.concatenate([(lo + hi) / 2, hi - lo], axis=-1)


def xywh_to_xyxy(boxes: Array) -> Array:
    """(centre x, centre y, w, h) -> (x1, y1, x2, y2) = (x − w/2, y − h/2, x + w/2, y + h/2)."""
    xp = _xp(boxes)
    xy, half = boxes[..., :2], boxes[..., 2:4] / 2
    return xp.concatenate([xy - half, xy + half], axis=-1)


def box_iou(a: Array, b: Array, pixel_offset: float = 0.0) -> Array:
    """Elementwise IoU of broadcastable ``a [..., 4]`` and ``b [..., 4]`` (x1, y1, x2, y2).

    IoU = I / (A_a + A_b − I), every width and height taken as (x2 − x1 + pixel_offset):
    ``pixel_offset=0`` for continuous coordinates (YOLOv5, torchvision), ``1`` for the VOC devkit's
    inclusive pixel convention. A zero union gives 0 (not NaN).
    """
    xp = _xp(a, b)
    w = xp.minimum(a[..., 2], b[..., 2]) - xp.maximum(a[..., 0], b[..., 0]) + pixel_offset
    h = xp.minimum(a[..., 3], b[..., 3]) - xp.maximum(a[..., 1], b[..., 1]) + pixel_offset
    inter = xp.maximum(w, 0) * xp.maximum(h, 0)
    area_a = (a[..., 2] - a[..., 0] + pixel_offset) * (a[..., 3] - a[..., 1] + pixel_offset)
    area_b = (b[..., 2] - b[..., 0] + pixel_offset) * (b[..., 3] - b[..., 1] + pixel_offset)
    return inter / xp.maximum(area_a + area_b - inter, 1e-12)


def scale_boxes(
    boxes: Array,
    from_shape: Sequence[int],
    to_shape: Sequence[int],
    ratio_pad: tuple[Sequence[float], Sequence[float]] | None = None,
) -> Array:
    """Maps xyxy boxes from a letterboxed input of ``from_shape`` (h, w) back to an original image of
    ``to_shape`` (h0, w0), as YOLOv5's ``scale_boxes``.

    x0 = (x − pad_w) / gain, y0 = (y − pad_h) / gain, then clipped to [0, w0] × [0, h0]. Without
    ``ratio_pad`` the letterbox is the centred one: gain = min(h/h0, w/w0), pad_w = (w − w0·gain)/2,
    pad_h = (h − h0·gain)/2. With ``ratio_pad = ((gain_h, gain_w), (pad_w, pad_h))`` (what the
    letterbox returned) gain = gain_h. Returns new boxes ``[..., 4]``; trailing columns are kept.
    """
    check(len(from_shape) == 2, "from_shape", from_shape, "an (h, w) pair")
    check(len(to_shape) == 2, "to_shape", to_shape, "an (h, w) pair")
    (h, w), (h0, w0) = from_shape, to_shape
    if ratio_pad is None:
        gain = min(h / h0, w / w0)
        pad_w, pad_h = (w - w0 * gain) / 2, (h - h0 * gain) / 2
    else:
        gain, (pad_w, pad_h) = ratio_pad[0][0], ratio_pad[1]
    xp = _xp(boxes)
    dtype = xp.result_type(boxes.dtype, xp.float32)
    pad = xp.asarray([pad_w, pad_h, pad_w, pad_h], dtype=dtype)
    upper = xp.asarray([w0, h0, w0, h0], dtype=dtype)
    scaled = xp.clip((boxes[..., :4] - pad) / gain, 0, upper)
    return xp.concatenate([scaled, boxes[..., 4:]], axis=-1)
