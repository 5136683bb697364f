"""The synthetic detection dataset (snnjax.tasks.detection.data.synthetic)."""

import numpy as np
import pytest

from snnjax.tasks.detection.data.synthetic import (
    SHAPES,
    synthetic_class_names,
    synthetic_example,
    synthetic_examples,
)


def examples(**options):
    train, test, names = synthetic_examples(num_train=6, num_test=3, image_size=48, **options)
    return [train.read(i) for i in train.items], [test.read(i) for i in test.items], names


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = examples(seed=1), examples(seed=1), examples(seed=2)
    for x, y in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.boxes, y.boxes)
        np.testing.assert_array_equal(x.classes, y.classes)
    assert not np.array_equal(a[0][0].image, c[0][0].image)


def test_train_and_test_images_differ():
    train, test, _ = examples()
    assert not np.array_equal(train[0].image, test[0].image)


def test_shapes_dtypes_and_boxes_inside_the_image():
    train, test, names = examples(num_classes=5, max_objects=4)
    assert names == SHAPES[:5]
    for ex in train + test:
        assert ex.image.dtype == np.uint8 and ex.image.ndim == 3 and max(ex.image.shape[:2]) == 48
        n = len(ex.classes)
        assert 1 <= n <= 4 and ex.boxes.shape == (n, 4) and ex.difficult.shape == (n,)
        assert ex.classes.dtype == np.int32 and ex.difficult.dtype == bool
        assert ((ex.classes >= 0) & (ex.classes < 5)).all()
        assert (ex.boxes >= 0).all() and (ex.boxes <= 1).all()
        assert (ex.boxes[:, 2:] > ex.boxes[:, :2]).all()


def test_box_is_the_exact_extent_of_an_unoccluded_shape():
    ex = synthetic_example(np.random.default_rng(0), 64, 1, 1)  # one circle
    h, w = ex.image.shape[:2]
    x1, y1, x2, y2 = np.rint(ex.boxes[0] * [w, h, w, h]).astype(int)
    inside = ex.image[y1:y2, x1:x2].astype(float)
    assert inside.std(axis=(0, 1)).max() > 0  # the box holds the shape
    centre = ex.image[(y1 + y2) // 2, (x1 + x2) // 2].astype(float)
    # the circle touches the middle of every box side, one pixel inside the box
    for y, x in [(y1, (x1 + x2) // 2), (y2 - 1, (x1 + x2) // 2), ((y1 + y2) // 2, x1), ((y1 + y2) // 2, x2 - 1)]:
        assert np.abs(ex.image[y, x].astype(float) - centre).max() < 60


def test_many_objects_produce_occluded_difficult_ones():
    train, _, _ = examples(max_objects=12, num_classes=6)
    flags = np.concatenate([ex.difficult for ex in train])
    assert flags.any() and not flags.all()


def test_class_names_beyond_six_name_the_hue_band():
    names = synthetic_class_names(8)
    assert names[:2] == ("circle/hue0", "square/hue0") and names[6] == "circle/hue1"


@pytest.mark.parametrize(
    "option, value, accepted",
    [
        ("num_classes", 25, r"an int in \[1, 24\]"),
        ("num_train", 0, "an int >= 1"),
        ("image_size", 8, "an int >= 16"),
        ("seed", -1, "an int >= 0"),
    ],
)
def test_bad_options_name_the_argument(option, value, accepted):
    with pytest.raises(ValueError, match=rf"^{option}: got {value}; accepted: {accepted}$"):
        synthetic_examples(**{option: value})
