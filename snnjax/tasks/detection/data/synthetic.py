"""A procedurally generated, learnable object-detection dataset of any size.

Each image (random aspect, long side ``image_size``) has a textured, mostly grey background
(tint, gradient, smooth blotches, stripes, noise) and 1..``max_objects`` filled shapes with shading.
Class ``c`` is the shape ``SHAPES[c % 6]`` in the hue band ``c // 6`` of ``ceil(num_classes / 6)``
equal bands (any hue when ``num_classes <= 6``); size, aspect, position and exact colour are
random. Later shapes occlude earlier ones; an object with under half of its pixels visible is
flagged ``difficult`` (dropped from training labels, ignored by the VOC metric, as in VOC).
Boxes are the exact pixel extent of each shape. Deterministic for a seed, image by image.
"""

from __future__ import annotations

import colorsys
import functools
import math

import cv2
import numpy as np

from snnjax.checks import integer
from snnjax.tasks.detection.config import MAX_SYNTHETIC_CLASSES, SYNTHETIC_SHAPES
from snnjax.tasks.detection.data.dataset import ExampleSource, RawExample

SHAPES = SYNTHETIC_SHAPES
_MIN_SIDE = 8


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    """bool ``[h, w]``: the shape inscribed in an ``h × w`` box (pixel centres in [−1, 1])."""
    y = (np.arange(h, dtype=np.float32)[:, None] + 0.5) / h * 2 - 1
    x = (np.arange(w, dtype=np.float32)[None, :] + 0.5) / w * 2 - 1
    r2 = x * x + y * y
    masks = {
        "circle": lambda: r2 <= 1,
        "square": lambda: np.ones((h, w), bool),
        "triangle": lambda: np.abs(x) <= (y + 1) / 2,
        "cross": lambda: (np.abs(x) <= 0.3) | (np.abs(y) <= 0.3),
        "ring": lambda: (r2 <= 1) & (r2 >= 0.3),
        "diamond": lambda: np.abs(x) + np.abs(y) <= 1,
    }
    return np.broadcast_to(masks[shape](), (h, w))


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = rng.uniform(0.25, 0.75) + rng.normal(0.0, 0.05, 3)
    coarse = rng.normal(0.0, 0.12, (6, 6, 1)) + rng.normal(0.0, 0.03, (6, 6, 3))
    blotches = cv2.resize(coarse.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    theta, freq = rng.uniform(0, np.pi), rng.uniform(0.02, 0.15)
    yy, xx = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    stripes = 0.05 * np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)))
    gradient = rng.normal(0.0, 0.15) * (xx / w - 0.5) + rng.normal(0.0, 0.15) * (yy / h - 0.5)
    return (base + blotches + (stripes + gradient)[..., None]).astype(np.float32)


def _colour(rng: np.random.Generator, cls: int, num_classes: int) -> np.ndarray:
    bands = math.ceil(num_classes / len(SHAPES))
    hue = (cls // len(SHAPES) + rng.uniform(0.15, 0.85)) / bands
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)), np.float32)


def synthetic_example(rng: np.random.Generator, image_size: int, num_classes: int, max_objects: int) -> RawExample:
    """One image with its exact normalised xyxy boxes, classes and occlusion flags."""
    long, short = image_size, int(rng.uniform(0.6, 1.0) * image_size)
    h, w = (long, short) if rng.uniform() < 0.5 else (short, long)
    image = _background(rng, h, w)
    owner = np.full((h, w), -1, np.int32)
    n = int(rng.integers(1, max_objects + 1))
    classes = rng.integers(0, num_classes, n).astype(np.int32)
    boxes, areas = np.zeros((n, 4), np.float32), np.zeros(n)
    for k, cls in enumerate(classes):
        side = rng.uniform(0.12, 0.5) * min(h, w)
        aspect = np.exp(rng.uniform(-0.4, 0.4))
        bh = int(np.clip(side * aspect, _MIN_SIDE, h))
        bw = int(np.clip(side / aspect, _MIN_SIDE, w))
        y0, x0 = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask = _shape_mask(SHAPES[cls % len(SHAPES)], bh, bw)
        shade = np.linspace(0.8, 1.1, bw, dtype=np.float32)[None, :, None]
        window = image[y0 : y0 + bh, x0 : x0 + bw]
        colour = _colour(rng, int(cls), num_classes) * shade
        window[mask] = np.broadcast_to(colour, (bh, bw, 3))[mask]
        owner[y0 : y0 + bh, x0 : x0 + bw][mask] = k
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        boxes[k] = (x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1)
        areas[k] = mask.sum()
    visible = np.bincount(owner[owner >= 0], minlength=n)
    image += np.float32(0.03) * rng.standard_normal(image.shape, np.float32)
    return RawExample(
        image=np.clip(np.rint(image * 255), 0, 255).astype(np.uint8),
        boxes=boxes / np.float32([w, h, w, h]),
        classes=classes,
        difficult=visible < 0.5 * areas,
    )


def synthetic_class_names(num_classes: int) -> tuple[str, ...]:
    """``circle``, ``square``, ... or, with more than 6 classes, ``circle/hue0``, ..."""
    if num_classes <= len(SHAPES):
        return SHAPES[:num_classes]
    return tuple(f"{SHAPES[c % len(SHAPES)]}/hue{c // len(SHAPES)}" for c in range(num_classes))


def synthetic_examples(
    *,
    num_train: int = 1024,
    num_test: int = 256,
    image_size: int = 320,
    num_classes: int = 6,
    max_objects: int = 6,
    seed: int = 0,
) -> tuple[ExampleSource, ExampleSource, tuple[str, ...]]:
    """Train and test examples, generated lazily (image ``i`` of split ``s`` from
    ``rng(seed, s, i)``), and the class names."""
    for arg, value, low, high in (
        ("num_train", num_train, 1, None),
        ("num_test", num_test, 1, None),
        ("image_size", image_size, 2 * _MIN_SIDE, None),
        ("num_classes", num_classes, 1, MAX_SYNTHETIC_CLASSES),
        ("max_objects", max_objects, 1, None),
        ("seed", seed, 0, None),
    ):
        integer(low, high)(arg, value)

    def generate(split: int, index: int) -> RawExample:
        rng = np.random.default_rng((seed, split, index))
        return synthetic_example(rng, image_size, num_classes, max_objects)

    train, test = (
        ExampleSource(range(count), functools.partial(generate, split))
        for split, count in enumerate((num_train, num_test))
    )
    return train, test, synthetic_class_names(num_classes)
