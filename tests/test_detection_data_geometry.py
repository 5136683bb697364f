"""Box formats (snnjax.boxes) and the letterbox (snnjax.tasks.detection.data.letterbox) with its inverse."""

import numpy as np
import pytest

from snnjax.boxes import bbox_to_xyxy, scale_boxes, xywh_to_xyxy, xyxy_to_xywh
from snnjax.tasks.detection.data.letterbox import PAD_VALUE, letterbox, resize_long_side


def test_tfds_bbox_to_yolo_xywh_and_back():
    bbox = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32)  # ymin xmin ymax xmax
    xywh = xyxy_to_xywh(bbox_to_xyxy(bbox))
    np.testing.assert_allclose(xywh, [[0.4, 0.3, 0.4, 0.4], [0.5, 0.5, 1.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(bbox_to_xyxy(xywh_to_xyxy(xywh)), bbox, atol=1e-7)


def test_box_conversions_keep_leading_axes():
    boxes = np.random.default_rng(0).uniform(size=(2, 3, 4))
    assert xyxy_to_xywh(boxes).shape == (2, 3, 4)
    np.testing.assert_allclose(xyxy_to_xywh(xywh_to_xyxy(boxes)), boxes, atol=1e-12)


def test_letterbox_landscape_geometry_and_pad_value():
    image = np.full((100, 200, 3), 7, np.uint8)
    out, gain, pad = letterbox(image, 64)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    assert gain == pytest.approx(0.32) and pad == (0, 16)
    assert (out[:16] == PAD_VALUE).all() and (out[48:] == PAD_VALUE).all()
    assert (out[16:48] == 7).all()


@pytest.mark.parametrize("h, top", [(50, 7), (49, 7)])
def test_letterbox_pad_is_yolov5_round_dh_minus_tenth(h, top):
    # dh = (64 - h) / 2 = 7 or 7.5; YOLOv5's top = round(dh - 0.1) = 7 in both cases.
    _, gain, pad = letterbox(np.zeros((h, 64, 3), np.uint8), 64)
    assert gain == 1.0 and pad == (0, top)


def test_scale_boxes_inverts_the_letterbox_it_is_given():
    image = np.zeros((100, 200, 3), np.uint8)
    _, gain, pad = letterbox(image, 64)
    original = np.array([[5.0, 10.0, 150.0, 90.0]], np.float32)
    forward = original * gain + np.array([pad[0], pad[1], pad[0], pad[1]])
    back = scale_boxes(forward, (64, 64), (100, 200), ratio_pad=((gain, gain), pad))
    np.testing.assert_allclose(back, original, rtol=1e-5)


def test_resize_long_side_keeps_aspect_and_upscales():
    up = resize_long_side(np.zeros((30, 40, 3), np.uint8), 80, augment=False)
    down = resize_long_side(np.zeros((375, 500, 3), np.uint8), 320, augment=True)
    assert up.shape == (60, 80, 3) and down.shape == (240, 320, 3)
