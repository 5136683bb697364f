"""load_detection and the batch iterators (snnjax.tasks.detection.data: datasets.py, dataset.py)."""

import numpy as np
import pytest

from snnjax.boxes import scale_boxes
from snnjax.tasks.detection.data import load_detection
from snnjax.tasks.detection.data.dataset import ExampleSource, RawExample, build_eval_split, pad_objects
from snnjax.tasks.detection.data.letterbox import PAD_VALUE

S = 64


@pytest.fixture(scope="module")
def data():
    return load_detection("synthetic", img_size=S, num_train=24, num_test=10, num_workers=2)


def test_train_batches_follow_the_contract(data):
    batches = list(data.train_batches(epoch=0, batch_size=8, seed=0))
    assert len(batches) == data.steps_per_epoch(8) == 3
    m = data.max_boxes
    for batch in batches:
        assert batch.keys() == {"image", "boxes", "classes", "valid"}
        assert batch["image"].shape == (8, S, S, 3) and batch["image"].dtype == np.uint8
        assert batch["boxes"].shape == (8, m, 4) and batch["boxes"].dtype == np.float32
        assert batch["classes"].shape == (8, m) and batch["classes"].dtype == np.int32
        assert batch["valid"].shape == (8, m) and batch["valid"].dtype == bool
        boxes = batch["boxes"][batch["valid"]]
        assert ((boxes >= 0) & (boxes <= 1)).all()
        assert (batch["classes"][batch["valid"]] < data.num_classes).all()
        assert not batch["boxes"][~batch["valid"]].any()


def test_train_batches_drop_the_last_partial_batch(data):
    assert len(list(data.train_batches(0, 10, 0))) == 2


def test_train_batches_are_deterministic_per_seed_and_epoch_whatever_the_threads(data):
    one_thread = load_detection("synthetic", img_size=S, num_train=24, num_test=10, num_workers=1)
    a = next(data.train_batches(1, 8, 5))
    b = next(one_thread.train_batches(1, 8, 5))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["image"], next(data.train_batches(2, 8, 5))["image"])
    assert not np.array_equal(a["image"], next(data.train_batches(1, 8, 6))["image"])


def test_train_batches_from_a_start_step_equal_the_tail_of_the_epoch(data):
    whole, tail = list(data.train_batches(1, 8, 5)), list(data.train_batches(1, 8, 5, start=1))
    assert len(tail) == len(whole) - 1
    for a, b in zip(whole[1:], tail, strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_default_max_boxes_never_drops(data):
    most = max(len(b) for b in data.train.boxes)
    assert data.max_boxes == 4 * most


def test_overflowing_max_boxes_warns_with_the_count():
    small = load_detection("synthetic", img_size=S, num_train=8, num_test=2, max_boxes=1, max_objects=6, num_workers=1)
    with pytest.warns(RuntimeWarning, match=r"max_boxes=1 is too small: dropped \d+ of \d+ boxes"):
        batch = next(small.train_batches(0, 8, 0))
    assert batch["boxes"].shape == (8, 1, 4)


def test_pad_objects_cuts_and_counts():
    boxes = [np.ones((3, 4), np.float32), np.full((1, 4), 2, np.float32), np.zeros((0, 4))]
    classes = [np.array([1, 2, 3]), np.array([4]), np.zeros(0)]
    out, cls, valid, dropped = pad_objects(boxes, classes, 2)
    assert dropped == 1
    assert valid.tolist() == [[True, True], [True, False], [False, False]]
    assert cls.tolist() == [[1, 2], [4, 0], [0, 0]]
    assert out[1, 0].tolist() == [2.0] * 4 and not out[2].any()


def test_eval_batches_pad_the_last_batch(data):
    batches = list(data.eval_batches(4))
    assert len(batches) == 3
    np.testing.assert_array_equal(np.concatenate([b["index"] for b in batches]), [*range(10), -1, -1])
    last = batches[-1]
    assert not last["gt_valid"][2:].any() and (last["gain"][2:] == 1).all()
    g = data.test.boxes.shape[1]
    for batch in batches:
        assert batch["image"].shape == (4, S, S, 3) and batch["image"].dtype == np.uint8
        assert batch["orig_hw"].dtype == np.int32 and batch["orig_hw"].shape == (4, 2)
        assert batch["gain"].dtype == np.float32 and batch["pad"].shape == (4, 2)
        assert batch["gt_boxes"].shape == (4, g, 4) and batch["gt_classes"].shape == (4, g)
        assert batch["gt_difficult"].dtype == bool and batch["gt_valid"].dtype == bool


def test_eval_split_keeps_difficult_objects_flagged_in_original_pixels():
    image = np.full((50, 100, 3), 200, np.uint8)
    example = RawExample(
        image, np.float32([[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1]]), np.int32([3, 4]), np.array([False, True])
    )
    split = build_eval_split(ExampleSource([example], lambda ex: ex), S, num_workers=1)
    assert split.orig_hw.tolist() == [[50, 100]] and split.gain[0] == pytest.approx(0.64)
    assert split.pad.tolist() == [[0, 16]]
    np.testing.assert_allclose(split.boxes[0], [[10, 10, 50, 30], [0, 0, 100, 50]], rtol=1e-6)
    assert split.difficult[0].tolist() == [False, True] and split.valid[0].tolist() == [True, True]
    assert (split.images[0, :16] == PAD_VALUE).all() and (split.images[0, 16:48] == 200).all()
    letterboxed = split.boxes[0] * split.gain[0] + np.tile(split.pad[0], 2)
    ratio_pad = ((split.gain[0], split.gain[0]), tuple(split.pad[0]))
    np.testing.assert_allclose(
        scale_boxes(letterboxed, (S, S), (50, 100), ratio_pad=ratio_pad), split.boxes[0], rtol=1e-5
    )


def test_load_detection_reports_sizes_and_classes(data):
    assert data.num_train == 24 and data.num_test == 10
    assert data.num_classes == len(data.class_names) == 6
    assert data.test.images.shape == (10, S, S, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"name": "coco"}, r"^dataset: got 'coco'; accepted: 'voc', 'synthetic'$"),
        (
            {"name": "voc", "num_train": 3},
            r"^options: got \['num_train'\]; accepted: none for dataset 'voc' \(only 'synthetic' takes options\)$",
        ),
        ({"name": "synthetic", "img_size": 8}, r"^img_size: got 8; accepted: an int >= 16$"),
        ({"name": "synthetic", "max_boxes": 0}, r"^max_boxes: got 0; accepted: none \(.*\) or an int >= 1$"),
        (
            {"name": "synthetic", "num_workers": 0},
            r"^num_workers: got 0; accepted: none \(all usable CPUs\) or an int >= 1$",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_detection(**kwargs)


def test_bad_batch_arguments_are_named(data):
    with pytest.raises(ValueError, match=r"^batch_size: got 25; accepted: an int in \[1, 24\] \(at most the training"):
        data.train_batches(0, 25, 0)
    with pytest.raises(ValueError, match=r"^epoch: got -1; accepted: an int >= 0$"):
        data.train_batches(-1, 8, 0)
    with pytest.raises(ValueError, match=r"^batch_size: got 0; accepted: an int >= 1$"):
        data.eval_batches(0)
