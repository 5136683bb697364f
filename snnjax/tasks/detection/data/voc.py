"""PASCAL VOC from prepared tensorflow-datasets ArrayRecord files, read without TensorFlow.

The standard VOC07+12 protocol (docs/yolov5n.md §6): train on ``voc/2007`` train+validation
plus ``voc/2012`` train+validation (16,551 images), test on ``voc/2007`` test (4,952 images).
tfds boxes are ``BBox(ymin, xmin, ymax, xmax)``, VOC pixel corners divided by the image size;
the 20 class ids are YOLOv5's ``VOC.yaml`` ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from snnjax.boxes import bbox_to_xyxy
from snnjax.data.tfds_source import open_prepared, parse_example
from snnjax.tasks.detection.data.dataset import ExampleSource, RawExample

TRAIN_SPLITS = (("voc/2007", ("train", "validation")), ("voc/2012", ("train", "validation")))
TEST_SPLITS = (("voc/2007", ("test",)),)
_PREPARE = ("voc/2007", "voc/2012")
_RECORDS_PER_CHUNK = 256


def parse_voc_record(record: bytes) -> RawExample:
    """One serialized tfds ``voc`` example -> JPEG bytes and normalised xyxy boxes."""
    feature = parse_example(record)
    bbox = np.asarray(feature["objects/bbox"].float_list.value, np.float32).reshape(-1, 4)
    return RawExample(
        image=feature["image"].bytes_list.value[0],
        boxes=bbox_to_xyxy(bbox),
        classes=np.asarray(feature["objects/label"].int64_list.value, np.int32),
        difficult=np.asarray(feature["objects/is_difficult"].int64_list.value, bool),
    )


def _records(sources: Sequence[Sequence[bytes]]) -> Iterator[bytes]:
    for source in sources:
        for start in range(0, len(source), _RECORDS_PER_CHUNK):
            yield from source.__getitems__(list(range(start, min(start + _RECORDS_PER_CHUNK, len(source)))))


def voc_examples(
    data_dir: str | None = None,
) -> tuple[ExampleSource, ExampleSource, tuple[str, ...]]:
    """VOC07+12 train and VOC07 test examples (read lazily), and the 20 class names.

    Checks that both ``voc/2007`` and ``voc/2012`` are prepared before reading anything; raises
    :class:`snnjax.data.DatasetNotPreparedError` (with the prepare command) otherwise.
    """
    opened = [
        [open_prepared(name, splits, data_dir, prepare_names=_PREPARE) for name, splits in spec]
        for spec in (TRAIN_SPLITS, TEST_SPLITS)
    ]
    train, test = (
        ExampleSource(_records([s for sources, _ in role for s in sources]), parse_voc_record) for role in opened
    )
    info = opened[1][0][1]
    return train, test, tuple(info.features["objects"]["label"].names)
