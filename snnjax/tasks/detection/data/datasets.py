"""``load_detection``: one entry point for every object-detection dataset."""

from __future__ import annotations

from typing import Any

from snnjax.checks import check, integer, one_of, optional
from snnjax.tasks.detection.config import DATASETS, AugmentConfig
from snnjax.tasks.detection.data.dataset import (
    DetectionData,
    build_eval_split,
    build_train_split,
    default_num_workers,
    mosaic_box_bound,
)
from snnjax.tasks.detection.data.synthetic import synthetic_examples
from snnjax.tasks.detection.data.voc import voc_examples


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
    are :func:`snnjax.tasks.detection.data.synthetic.synthetic_examples`'s (``image_size`` defaults to
    ``img_size``). ``max_boxes``: label slots per training image; ``None`` takes the bound no
    mosaic can exceed (4 × the most objects in one training image). ``num_workers``: decoding and
    augmentation threads (default: all usable CPUs).
    """
    check(
        not synthetic_options or name == "synthetic",
        "options",
        sorted(synthetic_options),
        f"none for dataset {name!r} (only 'synthetic' takes options)",
    )
    one_of(DATASETS)("dataset", name)
    integer(16)("img_size", img_size)
    optional(integer(1), "the most a mosaic can hold")("max_boxes", max_boxes)
    optional(integer(1), "all usable CPUs")("num_workers", num_workers)
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
