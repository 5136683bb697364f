"""YOLOv5 scratch-low training augmentation on the host (docs/yolov5n.md §3.6), with OpenCV.

Per sample: 4-image mosaic (or, with probability ``1 − mosaic``, the first image letterboxed) -> random
scale + translate (``random_perspective`` without rotation, shear or perspective) -> box filter -> HSV
gains -> horizontal flip. Images are uint8 RGB; boxes are xyxy in pixel-edge coordinates (pixel ``i``
spans ``[i, i + 1)``) until the final normalised xywh labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from snnjax.boxes import xyxy_to_xywh
from snnjax.tasks.detection.config import AugmentConfig
from snnjax.tasks.detection.data.letterbox import PAD_VALUE

_LABEL_EPS = 1e-3


def mosaic(
    images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], centre: tuple[int, int], size: int
) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv5 ``load_mosaic``: 4 images around ``centre = (xc, yc)`` on a ``2·size`` grey canvas.

    Image 0 ends at the centre (top left), 1 starts right of it (top right), 2 below-left, 3
    below-right; each is cropped by the canvas only. ``boxes[i]``: xyxy pixels of image ``i``.
    Returns the canvas and the concatenated boxes, shifted and clipped to ``[0, 2·size]``.
    """
    xc, yc = centre
    side = 2 * size
    canvas = np.full((side, side, 3), PAD_VALUE, np.uint8)
    shifted = []
    for i, (image, image_boxes) in enumerate(zip(images, boxes, strict=True)):
        h, w = image.shape[:2]
        x0 = xc - w if i in (0, 2) else xc
        y0 = yc - h if i in (0, 1) else yc
        xa0, ya0, xa1, ya1 = max(x0, 0), max(y0, 0), min(x0 + w, side), min(y0 + h, side)
        canvas[ya0:ya1, xa0:xa1] = image[ya0 - y0 : ya1 - y0, xa0 - x0 : xa1 - x0]
        shifted.append(np.asarray(image_boxes, np.float32) + np.float32([x0, y0, x0, y0]))
    return canvas, np.clip(np.concatenate(shifted).reshape(-1, 4), 0, side)


def pad_square(image: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLOv5's training letterbox of one image (long side already ``size``): centred on a grey
    ``size × size`` canvas; xyxy pixel ``boxes`` shifted with it."""
    h, w = image.shape[:2]
    x0, y0 = (size - w) // 2, (size - h) // 2
    canvas = np.full((size, size, 3), PAD_VALUE, np.uint8)
    canvas[y0 : y0 + h, x0 : x0 + w] = image
    return canvas, np.asarray(boxes, np.float32).reshape(-1, 4) + np.float32([x0, y0, x0, y0])


def box_candidates(
    old: np.ndarray,
    new: np.ndarray,
    wh_thr: float = 2.0,
    ar_thr: float = 100.0,
    area_thr: float = 0.1,
    eps: float = 1e-16,
) -> np.ndarray:
    """YOLOv5 ``box_candidates``: keep boxes > ``wh_thr`` px wide and tall, with area ratio
    ``new/old > area_thr`` (``old`` already scaled by the zoom) and aspect ratio < ``ar_thr``."""
    w1, h1 = old[:, 2] - old[:, 0], old[:, 3] - old[:, 1]
    w2, h2 = new[:, 2] - new[:, 0], new[:, 3] - new[:, 1]
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    area_ratio = w2 * h2 / (w1 * h1 + eps)
    return (w2 > wh_thr) & (h2 > wh_thr) & (area_ratio > area_thr) & (aspect < ar_thr)


def scale_translate(
    image: np.ndarray, boxes: np.ndarray, scale: float, translate: tuple[float, float], size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """YOLOv5 ``random_perspective`` with only zoom and shift, output ``[size, size]``.

    A point ``p`` (pixel-edge coordinates) moves to ``scale·(p − centre) + translate``, where
    ``centre`` is the input's centre; the image is warped bilinearly with grey fill. Boxes are
    mapped, clipped to the output and filtered by :func:`box_candidates`. Returns
    ``(image, boxes[keep], keep)``.
    """
    h, w = image.shape[:2]
    offset = np.array(translate, np.float64) - scale * np.array([w / 2, h / 2])
    # OpenCV addresses pixel centres at integers: shift by (scale − 1)/2 to stay edge-consistent.
    matrix = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
    matrix[:, 2] += (scale - 1.0) / 2
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(PAD_VALUE,) * 3)
    scaled = np.asarray(boxes, np.float32) * np.float32(scale)
    moved = np.clip(scaled + np.tile(offset, 2).astype(np.float32), 0, size)
    keep = box_candidates(scaled, moved)
    return warped, moved[keep], keep


def hsv_luts(gains: np.ndarray) -> np.ndarray:
    """uint8 lookup tables ``[3, 256]`` for gains ``r = (r_h, r_s, r_v)`` on OpenCV's 8-bit HSV:
    hue ``(x·r_h) mod 180``, saturation and value ``clip(x·r, 0, 255)``, truncated (YOLOv5)."""
    x = np.arange(256, dtype=np.float64)
    return np.stack([(x * gains[0]) % 180, np.clip(x * gains[1], 0, 255), np.clip(x * gains[2], 0, 255)]).astype(
        np.uint8
    )


def augment_hsv(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """YOLOv5 ``augment_hsv`` with drawn gains ``r``: uint8 RGB -> HSV, per-channel LUTs, -> RGB.

    ``r == (1, 1, 1)`` (all hyperparameter gains zero) returns ``image`` itself, as YOLOv5 skips
    the lossy HSV round trip then.
    """
    if np.all(np.asarray(gains) == 1.0):
        return image
    luts = hsv_luts(gains)
    channels = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    hsv = cv2.merge([cv2.LUT(channel, lut) for channel, lut in zip(channels, luts)])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def hflip(image: np.ndarray, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and normalised xywh boxes (``cx -> 1 − cx``)."""
    flipped = np.asarray(boxes_xywh, np.float32).copy()
    flipped[:, 0] = 1.0 - flipped[:, 0]
    return cv2.flip(image, 1), flipped


def augment_train(
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    classes: Sequence[np.ndarray],
    rng: np.random.Generator,
    size: int,
    config: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full scratch-low pipeline on 4 images (long side ``size``, xyxy pixel boxes); without a
    mosaic (probability ``1 − config.mosaic``) only the first image is used.

    Returns uint8 ``[size, size, 3]``, normalised xywh boxes ``[n, 4]`` (clipped with eps 1e-3,
    as YOLOv5's labels) and int32 classes ``[n]``.
    """
    centre = tuple(int(c) for c in rng.uniform(size / 2, 3 * size / 2, 2))
    scale = rng.uniform(1.0 - config.scale, 1.0 + config.scale)
    translate = rng.uniform(0.5 - config.translate, 0.5 + config.translate, 2) * size
    hsv_gains = rng.uniform(-1.0, 1.0, 3) * np.asarray(config.hsv_gains) + 1.0
    flip = rng.uniform() < config.fliplr
    # At probability 1 nothing is drawn, so runs made before the setting existed replay exactly.
    if config.mosaic >= 1.0 or rng.uniform() < config.mosaic:
        canvas, canvas_boxes = mosaic(images, boxes, centre, size)
        canvas_classes = np.concatenate(classes)
    else:
        canvas, canvas_boxes = pad_square(images[0], boxes[0], size)
        canvas_classes = np.asarray(classes[0])
    image, kept_boxes, keep = scale_translate(canvas, canvas_boxes, scale, tuple(translate), size)
    kept_classes = canvas_classes.astype(np.int32)[keep]
    labels = xyxy_to_xywh(np.clip(kept_boxes, 0, size - _LABEL_EPS) / size).astype(np.float32)
    image = augment_hsv(image, hsv_gains)
    if flip:
        image, labels = hflip(image, labels)
    return image, labels, kept_classes
