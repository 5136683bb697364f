"""Detections drawn on an image: a box and a ``name score`` label per detection (Pillow)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

# YOLOv5's (Ultralytics) palette, one colour per class index modulo its length.
PALETTE = (
    "FF3838 FF9D97 FF701F FFB21D CFD231 48F90A 92CC17 3DDB86 1A9334 00D4BB "
    "2C99A8 00C2FF 344593 6473FF 0018EC 8438FF 520085 CB38FF FF95C8 FF37C7"
).split()


def draw_detections(image: np.ndarray, detections: np.ndarray, class_names: Sequence[str]) -> Image.Image:
    """uint8 RGB ``[H, W, 3]`` with ``detections [n, 6]`` (x1, y1, x2, y2, score, class; its pixels) drawn,
    the best last (on top); line width as YOLOv5's, ``max(round((H + W) / 2 · 0.003), 2)``."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(round(sum(image.shape[:2]) / 2 * 0.003), 2)
    for x1, y1, x2, y2, score, cls in detections[::-1]:
        colour = f"#{PALETTE[int(cls) % len(PALETTE)]}"
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        label = f"{class_names[int(cls)]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label)
        y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1
        draw.rectangle((x1, y, x1 + right - left + 2, y + bottom - top + 2), fill=colour)
        draw.text((x1 + 1, y + 1 - top), label, fill="white")
    return canvas
