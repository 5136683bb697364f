"""npz:PATH datasets: loading and validation errors that name the offending key."""

import numpy as np
import pytest

from snnjax.tasks.classification.data import load_classification


def arrays(**override):
    rng = np.random.default_rng(0)
    data = {
        "x_train": rng.integers(0, 256, (6, 5, 4, 2), dtype=np.uint8),
        "y_train": np.array([0, 1, 2, 0, 1, 2], np.int64),
        "x_test": rng.integers(0, 256, (3, 5, 4, 2), dtype=np.uint8),
        "y_test": np.array([2, 1, 0], np.uint8),
    }
    data.update(override)
    return {k: v for k, v in data.items() if v is not None}


def save(tmp_path, **override):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays(**override))
    return f"npz:{path}"


def test_loads_and_computes_stats(tmp_path):
    name = save(tmp_path)
    data = load_classification(name)
    assert data.name == name and data.num_classes == 3
    assert data.x_train.shape == (6, 5, 4, 2) and data.y_train.dtype == np.int32
    assert data.y_test.dtype == np.int32 and data.y_test.tolist() == [2, 1, 0]
    x = data.x_train.astype(np.float64) / 255
    np.testing.assert_allclose(data.mean, x.mean((0, 1, 2)))
    np.testing.assert_allclose(data.std, x.std((0, 1, 2)))


def test_declared_num_classes(tmp_path):
    assert load_classification(save(tmp_path, num_classes=np.array(7))).num_classes == 7


@pytest.mark.parametrize(
    "override, message",
    [
        (
            dict(y_test=None),
            r"keys: got \['x_test', 'x_train', 'y_train'\]; "
            r"accepted: all of \['x_train', 'y_train', 'x_test', 'y_test'\] \(missing key\(s\) \['y_test'\]\)",
        ),
        (
            dict(x_train=np.zeros((6, 5, 4), np.uint8)),
            r"x_train: got 'uint8 \(6, 5, 4\)'; accepted: a non-empty uint8 array \[N, H, W, C\] \(NHWC\)",
        ),
        (
            dict(x_test=np.zeros((3, 5, 4, 2), np.float32)),
            r"x_test: got 'float32 \(3, 5, 4, 2\)'; accepted: a non-empty uint8 array \[N, H, W, C\] \(NHWC\)",
        ),
        (
            dict(y_train=np.zeros(5, np.int64)),
            r"y_train: got 'int64 \(5,\)'; accepted: an integer array of shape \(6,\) \(one label per image\)",
        ),
        (
            dict(y_test=np.array([0.0, 1.0, 2.0])),
            r"y_test: got 'float64 \(3,\)'; accepted: an integer array of shape \(3,\) \(one label per image\)",
        ),
        (
            dict(x_test=np.zeros((3, 5, 5, 2), np.uint8)),
            r"x_test: got 'uint8 \(3, 5, 5, 2\)'; "
            r"accepted: a uint8 array \[N, 5, 4, 2\] \(the \[H, W, C\] of x_train\)",
        ),
        (
            dict(y_train=np.array([0, 1, 2, 0, 1, -1])),
            r"y_train: got 'labels in \[-1, 2\]'; accepted: labels in \[0, 3\)",
        ),
        (dict(num_classes=np.array(2)), r"y_train: got 'labels in \[0, 2\]'; accepted: labels in \[0, 2\)"),
        (dict(num_classes=np.array([3])), r"num_classes: got 'int64 \(1,\)'; accepted: an integer scalar"),
        (
            dict(x_train=np.zeros((6, 3, 4, 5), np.uint8), x_test=np.zeros((3, 3, 4, 5), np.uint8)),
            r"x_train: got 'shape \(6, 3, 4, 5\), channels first \(NCHW\)'; "
            r"accepted: NHWC \[N, H, W, C\]: convert with np.transpose\(x, \(0, 2, 3, 1\)\)",
        ),
    ],
)
def test_validation_errors_name_the_key(tmp_path, override, message):
    with pytest.raises(ValueError, match=rf"^.*/data\.npz: {message}$"):
        load_classification(save(tmp_path, **override))


def test_a_file_that_is_not_an_npz_archive_is_named(tmp_path):
    path = tmp_path / "data.npz"
    path.write_text("x_train,y_train\n1,2\n")  # a CSV under an .npz name
    with pytest.raises(ValueError, match=rf"^dataset: got 'npz:{path}'; accepted: an \.npz archive of arrays"):
        load_classification(f"npz:{path}")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_classification(f"npz:{tmp_path / 'nope.npz'}")
