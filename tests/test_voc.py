"""VOC07+12 from prepared tfds ArrayRecord data, without TensorFlow (snnjax.tasks.detection.data.voc, tfds_source).

The fixture prepares a tiny ``voc/2007`` and ``voc/2012`` through the real tfds builder's
``download_and_prepare`` (its feature spec, serializer, shuffling and ArrayRecord layout), with our
examples in place of the download, as ``tests/test_data_cifar.py`` does for CIFAR.
"""

import sys

import cv2
import numpy as np
import pytest

from snnjax.data import DatasetNotPreparedError
from snnjax.tasks.detection.data import load_detection
from snnjax.tasks.detection.data.voc import parse_voc_record

tfds = pytest.importorskip("tensorflow_datasets")
from tensorflow_datasets.object_detection.voc import Voc  # noqa: E402

S = 64


def prepare_tiny(builder_cls, data_dir, config: str, splits: dict) -> None:
    """Prepare ``builder_cls`` (config ``config``) from ``{split: [example]}``, as ``tfds build
    --file_format=array_record`` would, without downloading."""

    class Tiny(builder_cls, skip_registration=True):
        name = builder_cls.name

        def _split_generators(self, dl_manager):
            return {split: enumerate(examples) for split, examples in splits.items()}

    download = tfds.download.DownloadConfig(try_download_gcs=False)
    builder = Tiny(config=config, data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(download_config=download)


def voc_example(h: int, w: int, objects=()) -> dict:
    """An ``h × w`` JPEG example; ``objects``: ``(label, (x1, y1, x2, y2) pixels, difficult)``."""
    image = np.full((h, w, 3), 90, np.uint8)
    for label, (x1, y1, x2, y2), _ in objects:
        image[y1:y2, x1:x2] = (40 + 10 * label, 200, 255 - 10 * label)
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    labels = sorted({o[0] for o in objects})
    return {
        "image": jpeg,
        "image/filename": f"{h}x{w}.jpg",
        "objects": {
            "label": [o[0] for o in objects],
            "bbox": [tfds.features.BBox(y1 / h, x1 / w, y2 / h, x2 / w) for _, (x1, y1, x2, y2), _ in objects],
            "pose": [4] * len(objects),
            "is_truncated": [False] * len(objects),
            "is_difficult": [o[2] for o in objects],
        },
        "labels": labels,
        "labels_no_difficult": sorted({o[0] for o in objects if not o[2]}),
    }


VOC2007 = {
    "train": [voc_example(60, 80, [(14, (10, 20, 50, 50), False), (8, (0, 0, 20, 10), True)])],
    "validation": [voc_example(80, 60, [(11, (5, 5, 40, 70), False)])],
    "test": [
        voc_example(50, 100, [(0, (10, 10, 50, 30), False), (19, (60, 5, 90, 45), True)]),
        voc_example(70, 70, [(6, (20, 20, 60, 60), False)]),
    ],
}
VOC2012 = {
    "train": [voc_example(64, 96, [(2, (30, 10, 90, 60), False)])],
    "validation": [voc_example(96, 64, [(3, (0, 0, 64, 96), False), (3, (5, 5, 20, 20), False)])],
    "test": [voc_example(40, 40)],  # VOC2012 test has no public labels
}


@pytest.fixture(scope="module")
def voc_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfds")
    prepare_tiny(Voc, root, "2007", VOC2007)
    prepare_tiny(Voc, root, "2012", VOC2012)
    return str(root)


@pytest.fixture(scope="module")
def voc(voc_dir):
    return load_detection("voc", data_dir=voc_dir, img_size=S, num_workers=1)


def test_reads_voc07_plus_12_without_tensorflow(voc):
    assert voc.num_train == 4 and voc.num_test == 2  # 07 train+val + 12 train+val; 07 test
    assert voc.num_classes == 20
    assert voc.class_names[0] == "aeroplane" and voc.class_names[-1] == "tvmonitor"
    assert "tensorflow" not in sys.modules


def test_training_images_are_resized_to_long_side_and_drop_difficult_objects(voc):
    t = voc.train
    by_shape = {im.shape[:2]: (b, c.tolist()) for im, b, c in zip(t.images, t.boxes, t.classes)}
    assert sorted(by_shape) == [(43, 64), (48, 64), (64, 43), (64, 48)]
    assert [by_shape[k][1] for k in [(48, 64), (64, 48), (43, 64), (64, 43)]] == [[14], [11], [2], [3, 3]]
    np.testing.assert_allclose(by_shape[(48, 64)][0], [[8, 16, 40, 40]], rtol=1e-5)  # × 0.8


def test_eval_keeps_difficult_objects_flagged_in_original_pixels(voc):
    t = voc.test
    i, j = (t.orig_hw.tolist().index(hw) for hw in ([50, 100], [70, 70]))
    np.testing.assert_allclose(t.boxes[i], [[10, 10, 50, 30], [60, 5, 90, 45]], rtol=1e-5)
    assert t.classes[i].tolist() == [0, 19] and t.classes[j, 0] == 6
    assert t.difficult[i].tolist() == [False, True] and t.difficult[j].tolist() == [False, False]
    assert t.valid[i].tolist() == [True, True] and t.valid[j].tolist() == [True, False]
    assert t.gain[[i, j]].tolist() == pytest.approx([0.64, S / 70])
    assert t.pad[[i, j]].tolist() == [[0, 16], [0, 0]]


def test_letterboxed_eval_pixels_match_the_boxes(voc):
    i = voc.test.orig_hw.tolist().index([50, 100])
    image, gain, (px, py) = voc.test.images[i], voc.test.gain[i], voc.test.pad[i]
    x1, y1, x2, y2 = np.rint(voc.test.boxes[i, 0] * gain + [px, py, px, py]).astype(int)
    inside = image[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].astype(int)
    assert (np.abs(inside - (40, 200, 255)) < 30).all()


def test_batches_from_voc_follow_the_contract(voc):
    batch = next(voc.train_batches(0, 2, 0))
    assert batch["image"].shape == (2, S, S, 3) and batch["boxes"].shape == (2, voc.max_boxes, 4)
    assert voc.max_boxes == 8  # 4 × the 2 objects of the busiest training image
    evaluation = next(voc.eval_batches(2))
    assert evaluation["gt_boxes"].shape == (2, 2, 4) and evaluation["index"].tolist() == [0, 1]
    assert evaluation["gt_difficult"].sum() == 1


def test_parse_voc_record_converts_tfds_bbox_to_xyxy():
    from tensorflow_datasets.core import example_serializer

    features = Voc(config="2007").info.features
    serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
    example = voc_example(50, 100, [(5, (10, 20, 30, 40), True)])
    raw = parse_voc_record(serializer.serialize_example(features.encode_example(example)))
    np.testing.assert_allclose(raw.boxes, [[0.1, 0.4, 0.3, 0.8]], rtol=1e-6)
    assert raw.classes.tolist() == [5] and raw.difficult.tolist() == [True]
    assert raw.image == example["image"]


def test_unprepared_data_fails_fast_with_the_prepare_command(tmp_path):
    with pytest.raises(DatasetNotPreparedError) as error:
        load_detection("voc", data_dir=str(tmp_path))
    message = str(error.value)
    assert "python -m snnjax.data.prepare voc/2007 voc/2012" in message
    assert str(tmp_path) in message and "--dataset=synthetic" in message


def test_missing_voc2012_is_named(tmp_path):
    prepare_tiny(Voc, tmp_path, "2007", VOC2007)
    with pytest.raises(DatasetNotPreparedError, match=r"missing .*voc/2012"):
        load_detection("voc", data_dir=str(tmp_path))
