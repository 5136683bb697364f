"""YOLOv5's letterbox (long side to ``size``, aspect kept, centred grey pad); ``snnjax.boxes.scale_boxes``
inverts it."""

from __future__ import annotations

import cv2
import numpy as np

PAD_VALUE = 114


def resize_long_side(image: np.ndarray, size: int, *, augment: bool) -> np.ndarray:
    """YOLOv5 ``load_image``: resize uint8 ``[H, W, 3]`` so that ``max(H, W) == size``.

    The new sides are ``round(side · size / max(H, W))``. Interpolation as YOLOv5: bilinear when
    ``augment`` (training) or upscaling, area averaging when downscaling for evaluation.
    """
    h0, w0 = image.shape[:2]
    gain = size / max(h0, w0)
    new_wh = (max(1, round(w0 * gain)), max(1, round(h0 * gain)))
    if new_wh == (w0, h0):
        return image
    interpolation = cv2.INTER_LINEAR if augment or gain > 1 else cv2.INTER_AREA
    return cv2.resize(image, new_wh, interpolation=interpolation)


def letterbox(image: np.ndarray, size: int, *, augment: bool = False) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Letterbox uint8 ``[H0, W0, 3]`` into ``[size, size, 3]`` (YOLOv5 ``letterbox``, auto=False).

    Returns ``(image, gain, (pad_x, pad_y))``: a pixel ``(x0, y0)`` of the input lands at
    ``(x0·gain + pad_x, y0·gain + pad_y)``, with ``gain = size / max(H0, W0)`` and the pad the
    integer left/top border (YOLOv5's ``round(dw − 0.1)``), filled with :data:`PAD_VALUE`.
    """
    h0, w0 = image.shape[:2]
    resized = resize_long_side(image, size, augment=augment)
    h, w = resized.shape[:2]
    pad_x, pad_y = (size - w) // 2, (size - h) // 2
    out = np.full((size, size, image.shape[2]), PAD_VALUE, np.uint8)
    out[pad_y : pad_y + h, pad_x : pad_x + w] = resized
    return out, size / max(h0, w0), (pad_x, pad_y)
