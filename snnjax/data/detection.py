"""``load_detection``: one entry point for every object-detection dataset."""

from __future__ import annotations

from typing import Any

from snnjax.data.detection_augment import AugmentConfig
from snnjax.data.detection_dataset import (
    DetectionData,
    build_eval_split,
    build_train_split,
    default_num_workers,
    mosaic_box_bound,
)
from snnjax.data.detection_synthetic import synthetic_examples
from snnjax.data.voc import voc_examples

DETECTION_DATASETS = ("voc", "synthetic")


def load_detection(
    name: str,
    *,
    data_dir: str | None = None,
    img_size: int = 320,
    max_boxes: int | None = None,
    augment: AugmentConfig = AugmentConfig(),
    num_workers: int | None = None,
    **synthetic_options: Any,
) -> DetectionData:
    """Load ``name`` into host memory: training images resized to long side ``img_size``, test
    images letterboxed to ``img_size × img_size``.

    ``voc``: VOC07+12 train / VOC07 test from prepared tfds ArrayRecord data under ``data_dir``
    (read without TensorFlow; never downloads). ``synthetic``: generated; ``synthetic_options``
    are :func:`snnjax.data.detection_synthetic.synthetic_examples`'s (``image_size`` defaults to
    ``img_size``). ``max_boxes``: label slots per training image; ``None`` takes the bound no
    mosaic can exceed (4 × the most objects in one training image). ``num_workers``: decoding and
    augmentation threads (default: all usable CPUs).
    """
    if synthetic_options and name != "synthetic":
        raise ValueError(f"options {sorted(synthetic_options)} only apply to dataset 'synthetic', got {name!r}")
    if name not in DETECTION_DATASETS:
        raise ValueError(f"dataset must be one of {list(DETECTION_DATASETS)}, got {name!r}")
    for arg, value, low in (
        ("img_size", img_size, 16),
        ("max_boxes", max_boxes, 1),
        ("num_workers", num_workers, 1),
    ):
        if value is not None and (int(value) != value or value < low):
            raise ValueError(f"{arg} must be an integer >= {low}, got {value!r}")
    workers = num_workers or default_num_workers()
    if name == "voc":
        train_examples, test_examples, class_names = voc_examples(data_dir)
    else:
        synthetic_options.setdefault("image_size", img_size)
        train_examples, test_examples, class_names = synthetic_examples(**synthetic_options)
    train = build_train_split(train_examples, img_size, workers)
    test = build_eval_split(test_examples, img_size, workers)
    return DetectionData(
        train=train,
        test=test,
        class_names=class_names,
        img_size=img_size,
        max_boxes=max_boxes or mosaic_box_bound(train),
        augment=augment,
        num_workers=workers,
        name=name,
    )
