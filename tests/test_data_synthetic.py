"""The synthetic dataset: shapes, determinism, balance, a learnable but not trivial task."""

import numpy as np
import pytest

from snnjax.tasks.classification.data import load_classification
from snnjax.tasks.classification.data.synthetic import load_synthetic


def test_defaults_shapes_dtypes_and_stats():
    data = load_classification("synthetic")
    assert data.x_train.shape == (2048, 32, 32, 3) and data.x_train.dtype == np.uint8
    assert data.x_test.shape == (512, 32, 32, 3) and data.x_test.dtype == np.uint8
    assert data.y_train.dtype == np.int32 and data.y_test.shape == (512,)
    assert data.num_classes == 10 and data.name == "synthetic" and data.image_shape == (32, 32, 3)
    x = data.x_train.astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, x.mean((0, 1, 2)), atol=1e-9)
    np.testing.assert_allclose(data.std, x.std((0, 1, 2)), atol=1e-9)


def test_options_and_determinism():
    kw = dict(num_train=60, num_test=30, image_size=20, num_classes=3, channels=1)
    a, b = load_synthetic(seed=1, **kw), load_synthetic(seed=1, **kw)
    c = load_synthetic(seed=2, **kw)
    assert a.x_train.shape == (60, 20, 20, 1) and a.x_test.shape == (30, 20, 20, 1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_train[:30], a.x_test)


def test_balanced_labels():
    data = load_synthetic(num_train=103, num_test=20, num_classes=5)
    counts = np.bincount(data.y_train, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103
    assert set(np.unique(data.y_test)) == set(range(5))


@pytest.mark.parametrize(
    "arg, value, accepted",
    [("num_train", 0, "an int >= 1"), ("num_classes", 1, "an int >= 2"), ("image_size", 2.5, "an int >= 4")],
)
def test_bad_options_name_the_argument(arg, value, accepted):
    with pytest.raises(ValueError, match=rf"^{arg}: got {value}; accepted: {accepted}$"):
        load_synthetic(**{arg: value})


def test_nearest_centroid_beats_chance_but_is_far_from_perfect():
    data = load_synthetic(num_train=2048, num_test=512)
    train, test = (x.reshape(len(x), -1).astype(np.float32) / 255 for x in (data.x_train, data.x_test))
    centroids = np.stack([train[data.y_train == k].mean(0) for k in range(10)])
    distances = (test**2).sum(1)[:, None] - 2 * test @ centroids.T + (centroids**2).sum(1)
    accuracy = (distances.argmin(1) == data.y_test).mean()
    assert 0.15 < accuracy < 0.6  # chance = 0.1; a small convnet reaches ~0.9
