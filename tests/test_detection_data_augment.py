"""Training augmentation (snnjax.tasks.detection.data.augment): boxes stay on their pixels."""

import cv2
import numpy as np
import pytest

from snnjax.boxes import xywh_to_xyxy
from snnjax.tasks.detection.data.augment import (
    AugmentConfig,
    augment_hsv,
    augment_train,
    box_candidates,
    hflip,
    hsv_luts,
    mosaic,
    pad_square,
    scale_translate,
)
from snnjax.tasks.detection.data.letterbox import PAD_VALUE

S = 64
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)


def rectangle_images():
    """4 images (long side S, grey 60) with one filled rectangle each, in its own colour."""
    shapes = [(48, 64), (64, 40), (64, 64), (32, 64)]
    rects = [(10, 8, 40, 30), (5, 20, 30, 60), (30, 30, 50, 44), (2, 2, 62, 30)]  # xyxy
    images = []
    for (h, w), (x1, y1, x2, y2), colour in zip(shapes, rects, COLOURS):
        image = np.full((h, w, 3), 60, np.uint8)
        image[y1:y2, x1:x2] = colour
        images.append(image)
    boxes = [np.array([r], np.float32) for r in rects]
    classes = [np.array([k], np.int32) for k in range(4)]
    return images, boxes, classes


def colour_extent(image, colour):
    """xyxy pixel-edge extent of the pixels close to ``colour`` (None if there are none)."""
    mask = (np.abs(image.astype(int) - colour) < 60).all(-1)
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], np.float32)


def test_mosaic_places_boxes_on_their_pixels():
    images, boxes, _ = rectangle_images()
    canvas, placed = mosaic(images, boxes, centre=(70, 50), size=S)
    assert canvas.shape == (2 * S, 2 * S, 3) and placed.shape == (4, 4)
    assert canvas[-1, -1].tolist() == [PAD_VALUE] * 3
    for k in range(4):
        np.testing.assert_array_equal(colour_extent(canvas, COLOURS[k]), placed[k])


def test_mosaic_clips_boxes_to_the_canvas():
    images, boxes, _ = rectangle_images()
    _, placed = mosaic(images, boxes, centre=(10, 100), size=S)  # image 0 sticks out left
    assert placed.min() >= 0 and placed.max() <= 2 * S
    assert placed[0, 0] == 0  # rectangle 0 spans x in [-44, -14]: clipped to 0..0
    assert placed[0, 2] == 0


def test_pad_square_centres_the_image_and_its_boxes():
    images, boxes, _ = rectangle_images()
    canvas, placed = pad_square(images[1], boxes[1], S)  # 64 tall, 40 wide: 12 px of grey each side
    assert canvas.shape == (S, S, 3) and canvas[0, 0].tolist() == [PAD_VALUE] * 3
    np.testing.assert_array_equal(placed, [[17, 20, 42, 60]])
    np.testing.assert_array_equal(colour_extent(canvas, COLOURS[1]), placed[0])


@pytest.mark.parametrize("seed", range(4))
def test_augment_train_without_mosaic_keeps_only_the_first_image(seed):
    images, boxes, classes = rectangle_images()
    config = AugmentConfig(hsv_gains=(0.0, 0.0, 0.0), mosaic=0.0, scale=0.2)
    image, labels, kept = augment_train(images, boxes, classes, np.random.default_rng(seed), S, config)
    assert kept.tolist() == [0]
    assert all(colour_extent(image, COLOURS[k]) is None for k in (1, 2, 3))
    np.testing.assert_allclose(colour_extent(image, COLOURS[0]), xywh_to_xyxy(labels[0]) * S, atol=1.0)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_scale_translate_keeps_boxes_on_their_pixels(scale):
    canvas = np.full((2 * S, 2 * S, 3), 60, np.uint8)
    canvas[50:80, 40:90] = COLOURS[0]
    box = np.array([[40.0, 50.0, 90.0, 80.0]], np.float32)
    image, moved, keep = scale_translate(canvas, box, scale, (0.45 * S, 0.55 * S), S)
    assert image.shape == (S, S, 3) and keep.tolist() == [True]
    np.testing.assert_allclose(colour_extent(image, COLOURS[0]), moved[0], atol=1.01)


def test_scale_translate_fills_with_grey():
    image, _, _ = scale_translate(np.zeros((2 * S, 2 * S, 3), np.uint8), np.zeros((0, 4)), 0.5, (0.4 * S, 0.4 * S), S)
    assert image[-1, -1].tolist() == [PAD_VALUE] * 3 and image[S // 2, S // 2].tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("fliplr", [0.0, 1.0])
def test_augment_train_boxes_bound_their_colour(seed, fliplr):
    images, boxes, classes = rectangle_images()
    config = AugmentConfig(hsv_gains=(0.0, 0.0, 0.0), fliplr=fliplr)
    rng = np.random.default_rng(seed)
    image, labels, kept = augment_train(images, boxes, classes, rng, S, config)
    assert image.shape == (S, S, 3) and image.dtype == np.uint8
    assert labels.dtype == np.float32 and kept.dtype == np.int32 and len(labels) == len(kept)
    assert ((labels >= 0) & (labels <= 1)).all()
    for xywh, k in zip(labels, kept):
        extent = colour_extent(image, COLOURS[k])
        assert extent is not None
        np.testing.assert_allclose(extent, xywh_to_xyxy(xywh) * S, atol=1.0)


def test_augment_train_is_deterministic_for_a_generator_seed():
    images, boxes, classes = rectangle_images()
    a = augment_train(images, boxes, classes, np.random.default_rng(3), S, AugmentConfig())
    b = augment_train(images, boxes, classes, np.random.default_rng(3), S, AugmentConfig())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_box_filter_drops_tiny_thin_and_mostly_cut_boxes():
    old = np.float32([[0, 0, 10, 10]] * 5 + [[0, 0, 500, 4]])
    new = np.float32(
        [
            [0, 0, 10, 10],  # kept
            [0, 0, 1.5, 10],  # 1.5 px wide
            [0, 0, 10, 2],  # 2 px tall (must be > 2)
            [0, 0, 3, 3],  # area ratio 0.09
            [0, 0, 4, 3],  # area ratio 0.12: kept
            [0, 0, 500, 4],  # aspect ratio 125
        ]
    )
    assert box_candidates(old, new).tolist() == [True, False, False, False, True, False]


def test_hsv_with_zero_gains_is_identity():
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert augment_hsv(image, np.ones(3)) is image


def test_hsv_hue_wraps_at_180():
    assert hsv_luts(np.array([1.1, 1.0, 1.0]))[0, 170] == 7  # 187 mod 180
    pixel = cv2.cvtColor(np.array([[[170, 255, 255]]], np.uint8), cv2.COLOR_HSV2RGB)
    out = augment_hsv(pixel, np.array([1.1, 1.0, 1.0]))
    assert abs(int(cv2.cvtColor(out, cv2.COLOR_RGB2HSV)[0, 0, 0]) - 7) <= 1


def test_hsv_saturation_and_value_clip_at_255():
    luts = hsv_luts(np.array([1.0, 1.7, 0.6]))
    assert luts[1, 200] == 255 and luts[2, 200] == 120 and luts[1, 100] == 170


def test_hflip_maps_x_to_one_minus_x():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    flipped, boxes = hflip(image, np.array([[0.2, 0.3, 0.1, 0.4]], np.float32))
    np.testing.assert_array_equal(flipped, image[:, ::-1])
    np.testing.assert_allclose(boxes, [[0.8, 0.3, 0.1, 0.4]])


def test_augment_config_rejects_bad_values():
    with pytest.raises(ValueError, match="translate"):
        AugmentConfig(translate=0.7)
    with pytest.raises(ValueError, match="hsv_gains"):
        AugmentConfig(hsv_gains=(0.1, -0.1, 0.0))
