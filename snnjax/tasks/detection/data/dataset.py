"""The in-memory detection dataset every detection loader returns, and its batch iterators.

Training images are cached resized (long side ``img_size``, YOLOv5's ``--cache ram``) and
augmented per sample on a host thread pool (OpenCV releases the GIL); test images are cached
letterboxed, so evaluation only slices arrays.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from snnjax.checks import check, integer
from snnjax.tasks.detection.config import AugmentConfig
from snnjax.tasks.detection.data.augment import augment_train
from snnjax.tasks.detection.data.letterbox import letterbox, resize_long_side

_ITEMS_PER_CHUNK = 256


@dataclasses.dataclass(frozen=True, eq=False)
class RawExample:
    """One annotated image as a loader reads it.

    ``image``: uint8 RGB ``[H, W, 3]`` or encoded (JPEG/PNG) bytes; ``boxes``: float32 ``[n, 4]``
    normalised xyxy; ``classes``: int32 ``[n]``; ``difficult``: bool ``[n]``.
    """

    image: np.ndarray | bytes
    boxes: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class ExampleSource:
    """Lazy examples of one split: ``read(item)`` for each of ``items``, run on worker threads
    (so decoding or generating is parallel)."""

    items: Iterable[Any]
    read: Callable[[Any], RawExample]


@dataclasses.dataclass(frozen=True, eq=False)
class TrainSplit:
    """Images resized to long side ``img_size``; per image xyxy pixel boxes and int32 classes."""

    images: list[np.ndarray]
    boxes: list[np.ndarray]
    classes: list[np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class EvalSplit:
    """Letterboxed images ``[N, S, S, 3]``, their geometry, and padded ground truth.

    ``orig_hw`` int32 ``[N, 2]``; ``gain`` float32 ``[N]``; ``pad`` float32 ``[N, 2]`` (x, y);
    ``boxes`` float32 ``[N, G, 4]`` xyxy in original pixels; ``classes`` int32, ``difficult`` and
    ``valid`` bool, all ``[N, G]`` (``G``: the most objects in one image).
    """

    images: np.ndarray
    orig_hw: np.ndarray
    gain: np.ndarray
    pad: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray
    valid: np.ndarray


def default_num_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def decode_image(image: np.ndarray | bytes) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` from an array (returned as is) or encoded image bytes.

    EXIF orientation is ignored: annotations refer to the stored pixels (as tfds decodes them).
    """
    if isinstance(image, np.ndarray):
        return image
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), flags)
    if decoded is None:
        raise ValueError(f"could not decode an image of {len(image)} bytes")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def parallel_map(fn: Callable[[Any], Any], items: Iterable[Any], num_workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` on a thread pool, reading ``items`` lazily in chunks."""
    items = iter(items)
    out = []
    with ThreadPoolExecutor(num_workers) as pool:
        while chunk := list(itertools.islice(items, _ITEMS_PER_CHUNK)):
            out.extend(pool.map(fn, chunk))
    return out


def _train_entry(example: RawExample, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resized image, xyxy pixel boxes and classes of the non-difficult objects."""
    image = resize_long_side(decode_image(example.image), size, augment=True)
    h, w = image.shape[:2]
    keep = ~np.asarray(example.difficult, bool)
    boxes = np.asarray(example.boxes, np.float32).reshape(-1, 4)[keep] * np.float32([w, h, w, h])
    return image, boxes, np.asarray(example.classes, np.int32)[keep]


def build_train_split(source: ExampleSource, size: int, num_workers: int) -> TrainSplit:
    """Read, resize to long side ``size`` and drop ``difficult`` objects (YOLOv5's labels)."""
    entries = parallel_map(lambda item: _train_entry(source.read(item), size), source.items, num_workers)
    if not entries:
        raise ValueError("the training split is empty")
    images, boxes, classes = (list(column) for column in zip(*entries))
    return TrainSplit(images=images, boxes=boxes, classes=classes)


def _eval_entry(example: RawExample, size: int) -> tuple:
    """Letterboxed image, its geometry, and all objects in original pixels."""
    image = decode_image(example.image)
    h0, w0 = image.shape[:2]
    boxed, gain, pad = letterbox(image, size)
    boxes = np.asarray(example.boxes, np.float32).reshape(-1, 4) * np.float32([w0, h0, w0, h0])
    return boxed, (h0, w0), gain, pad, boxes, example.classes, example.difficult


def build_eval_split(source: ExampleSource, size: int, num_workers: int) -> EvalSplit:
    """Read and letterbox to ``size``; keep all objects, ``difficult`` ones flagged."""
    entries = parallel_map(lambda item: _eval_entry(source.read(item), size), source.items, num_workers)
    if not entries:
        raise ValueError("the evaluation split is empty")
    images, orig_hw, gain, pad, boxes, classes, difficult = zip(*entries)
    longest = max(1, max(len(b) for b in boxes))
    padded_boxes, padded_classes, valid, _ = pad_objects(boxes, classes, longest)
    padded_difficult = np.zeros_like(valid)
    for i, flags in enumerate(difficult):
        padded_difficult[i, : len(flags)] = flags
    return EvalSplit(
        images=np.stack(images),
        orig_hw=np.asarray(orig_hw, np.int32),
        gain=np.asarray(gain, np.float32),
        pad=np.asarray(pad, np.float32),
        boxes=padded_boxes,
        classes=padded_classes,
        difficult=padded_difficult,
        valid=valid,
    )


def mosaic_box_bound(train: TrainSplit) -> int:
    """The most boxes a mosaic can hold: 4 × the most in one image (each box maps to <= 1)."""
    return max(1, 4 * max(len(b) for b in train.boxes))


def pad_objects(
    boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray], max_boxes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stack per-image ``[n_i, 4]`` boxes and ``[n_i]`` classes into ``[B, max_boxes, ...]``.

    Returns ``(boxes, classes, valid, dropped)``: boxes past ``max_boxes`` in an image are cut
    (the first ``max_boxes`` are kept) and counted in ``dropped``.
    """
    n = len(boxes)
    out_boxes = np.zeros((n, max_boxes, 4), np.float32)
    out_classes = np.zeros((n, max_boxes), np.int32)
    valid = np.zeros((n, max_boxes), bool)
    dropped = 0
    for i, (image_boxes, image_classes) in enumerate(zip(boxes, classes, strict=True)):
        k = min(len(image_boxes), max_boxes)
        dropped += len(image_boxes) - k
        out_boxes[i, :k] = image_boxes[:k]
        out_classes[i, :k] = image_classes[:k]
        valid[i, :k] = True
    return out_boxes, out_classes, valid, dropped


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionData:
    """A detection dataset in host memory and its batch iterators.

    ``max_boxes``: the label slots per training image; ``augment``: the training augmentation;
    ``num_workers``: threads that augment training samples.
    """

    train: TrainSplit
    test: EvalSplit
    class_names: tuple[str, ...]
    img_size: int
    max_boxes: int
    augment: AugmentConfig
    num_workers: int
    name: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_train(self) -> int:
        return len(self.train.images)

    @property
    def num_test(self) -> int:
        return len(self.test.images)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Training batches per epoch (the last partial batch is dropped)."""
        integer(1)("batch_size", batch_size)
        return self.num_train // batch_size

    def train_example(
        self, seed: int, epoch: int, position: int, index: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augmented sample ``position`` of ``epoch`` (image ``index`` + 3 random partners).

        Its randomness depends on ``(seed, epoch, position)`` only, whichever thread runs it.
        """
        rng = np.random.default_rng((seed, epoch, position))
        picks = [index, *rng.integers(0, self.num_train, 3)]
        t = self.train
        return augment_train(
            [t.images[p] for p in picks],
            [t.boxes[p] for p in picks],
            [t.classes[p] for p in picks],
            rng,
            self.img_size,
            self.augment,
        )

    def train_batches(
        self, epoch: int, batch_size: int, seed: int, *, start: int = 0, prefetch: int = 2
    ) -> Iterator[dict[str, np.ndarray]]:
        """Shuffled, augmented training batches of one epoch from batch ``start``, the last partial one dropped.

        Each batch: ``image`` uint8 ``[B, S, S, 3]``, ``boxes`` float32 ``[B, M, 4]`` normalised
        xywh, ``classes`` int32 ``[B, M]``, ``valid`` bool ``[B, M]`` (``M = max_boxes``; boxes
        past it are dropped with a warning). Deterministic for ``(seed, epoch)``; ``prefetch``
        batches are augmented ahead on ``num_workers`` threads.
        """
        for arg, value in (("epoch", epoch), ("seed", seed), ("start", start)):
            integer(0)(arg, value)
        integer(1)("prefetch", prefetch)
        check(
            self.steps_per_epoch(batch_size) > 0,
            "batch_size",
            batch_size,
            f"an int in [1, {self.num_train}] (at most the training images)",
        )
        return self._augmented_batches(epoch, batch_size, seed, start, prefetch)

    def _augmented_batches(
        self, epoch: int, batch_size: int, seed: int, start: int, prefetch: int
    ) -> Iterator[dict[str, np.ndarray]]:
        steps = self.num_train // batch_size
        order = np.random.default_rng((seed, epoch)).permutation(self.num_train)
        pool = ThreadPoolExecutor(self.num_workers)

        def submit(step: int) -> list:
            positions = range(step * batch_size, (step + 1) * batch_size)
            return [pool.submit(self.train_example, seed, epoch, p, int(order[p])) for p in positions]

        try:
            pending = collections.deque(submit(step) for step in range(start, min(start + prefetch, steps)))
            for step in range(start, steps):
                futures = pending.popleft()
                if step + prefetch < steps:
                    pending.append(submit(step + prefetch))
                yield self._collate([f.result() for f in futures], epoch, step)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _collate(self, samples: list, epoch: int, step: int) -> dict[str, np.ndarray]:
        images, boxes, classes = zip(*samples)
        padded_boxes, padded_classes, valid, dropped = pad_objects(boxes, classes, self.max_boxes)
        if dropped:
            total = sum(len(b) for b in boxes)
            warnings.warn(
                f"max_boxes={self.max_boxes} is too small: dropped {dropped} of {total} boxes "
                f"in training batch {step} of epoch {epoch}; raise max_boxes",
                RuntimeWarning,
                stacklevel=3,
            )
        return {
            "image": np.stack(images),
            "boxes": padded_boxes,
            "classes": padded_classes,
            "valid": valid,
        }

    def eval_batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Test batches in order; the last one is padded to ``batch_size`` (``index == −1``).

        Each batch: ``image`` uint8 ``[B, S, S, 3]`` (letterboxed), ``index`` int32 ``[B]``,
        ``orig_hw`` int32 ``[B, 2]``, ``gain`` float32 ``[B]``, ``pad`` float32 ``[B, 2]`` (map
        predictions back with :func:`snnjax.boxes.scale_boxes` with ``ratio_pad=((gain, gain), pad)``),
        and the ground truth ``gt_boxes`` float32 ``[B, G, 4]`` (xyxy, original pixels), ``gt_classes`` int32,
        ``gt_difficult`` and ``gt_valid`` bool ``[B, G]``.
        """
        integer(1)("batch_size", batch_size)
        return self._padded_eval_batches(batch_size)

    def _padded_eval_batches(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        t = self.test
        fields = {
            "image": t.images,
            "orig_hw": t.orig_hw,
            "gain": t.gain,
            "pad": t.pad,
            "gt_boxes": t.boxes,
            "gt_classes": t.classes,
            "gt_difficult": t.difficult,
            "gt_valid": t.valid,
        }
        for start in range(0, self.num_test, batch_size):
            stop = min(start + batch_size, self.num_test)
            short = batch_size - (stop - start)
            batch = {k: _pad_rows(v[start:stop], short) for k, v in fields.items()}
            batch["gain"][stop - start :] = 1.0
            batch["index"] = np.concatenate([np.arange(start, stop, dtype=np.int32), np.full(short, -1, np.int32)])
            yield batch


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.concatenate([x, np.zeros((rows, *x.shape[1:]), x.dtype)]) if rows else x.copy()
