"""Predicting with a trained model (``snnjax.trained``) on image files: reading, preparing, inference.

Images are read with Pillow (any format it reads; EXIF orientation applied; grey, palette and alpha
images converted to RGB, alpha dropped) as uint8 ``[H, W, 3]``. A classifier's input is the image
resized to the run's ``[H, W]`` (Pillow bicubic, aspect ratio not kept) and normalised with the run's
mean/std; a detector's is YOLOv5's letterbox to ``img_size`` (``snnjax.tasks.detection.data.letterbox``),
and its boxes are mapped back to the original pixels. Inference is jitted once per model and batch
shape: callers pad a short batch to ``rows`` (the padded rows are dropped from the results).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageOps

from snnjax.boxes import scale_boxes, xyxy_to_xywh
from snnjax.metrics.nms import non_max_suppression
from snnjax.tasks.classification.data import normalize
from snnjax.tasks.detection import evaluator
from snnjax.trained import TrainedModel

RESAMPLING = Image.Resampling.BICUBIC  # the classifier's resize
# YOLOv5 detect.py's defaults.
CONF_THRES, IOU_THRES, MAX_DET = 0.25, 0.45, 1000


def image_files(paths: Sequence[str]) -> list[str]:
    """``paths`` in order, each folder replaced by its image files (by Pillow's extensions, not recursive,
    hidden files skipped) sorted by name. Files and missing paths are kept as given (reading reports them)."""
    extensions = set(Image.registered_extensions())
    files = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if not n.startswith("."))
            files += [os.path.join(path, n) for n in names if os.path.splitext(n)[1].lower() in extensions]
        else:
            files.append(path)
    return files


def read_image(path: str) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` of the image file at ``path``; OSError (Pillow's, or a missing file) when unreadable."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")
        return np.asarray(image.convert("RGB"))


def classifier_input(image: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` -> ``[height, width, channels]``: resized with :data:`RESAMPLING` (aspect
    ratio not kept), Pillow's luma for one channel."""
    resized = Image.fromarray(image)
    if image.shape[:2] != (height, width):
        resized = resized.resize((width, height), RESAMPLING)
    return np.asarray(resized.convert("L"))[..., None] if channels == 1 else np.asarray(resized)


def pad_rows(x: np.ndarray, rows: int | None) -> np.ndarray:
    """``x [n, ...]`` with zero rows appended up to ``rows`` (None: ``n``)."""
    missing = (rows or len(x)) - len(x)
    return np.concatenate([x, np.zeros((missing, *x.shape[1:]), x.dtype)]) if missing > 0 else x


@functools.partial(jax.jit, static_argnames="model")
def class_probabilities(
    model: nn.Module, variables: dict, images: jax.Array, mean: jax.Array, std: jax.Array, rng: jax.Array
) -> jax.Array:
    """Softmax probabilities ``[B, classes]`` of uint8 ``images [B, H, W, C]`` (evaluation mode)."""
    logits = model.apply(variables, normalize(images, mean, std), train=False, rngs={"encoding": rng})
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1)


def classify(
    trained: TrainedModel, images: Sequence[np.ndarray], rng: jax.Array, rows: int | None = None
) -> np.ndarray:
    """Class probabilities ``[N, classes]`` of uint8 RGB images (any sizes); ``rows``: the batch to pad to."""
    x = np.stack([classifier_input(image, *trained.info["image_shape"]) for image in images])
    mean, std = (jnp.asarray(trained.info[k], jnp.float32) for k in ("mean", "std"))
    probabilities = class_probabilities(trained.model, trained.variables, pad_rows(x, rows), mean, std, rng)
    return np.asarray(probabilities)[: len(images)]


def top_classes(probabilities: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``min(k, classes)`` most probable classes of each row of ``[N, classes]``: indices and
    probabilities ``[N, k]``, most probable first (ties: the lower index)."""
    order = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=-1)


@functools.partial(jax.jit, static_argnames="model")
def decoded_predictions(model: nn.Module, variables: dict, images: jax.Array, rng: jax.Array) -> jax.Array:
    """A detector's decoded predictions ``[B, N, 5 + nc]`` on uint8 letterboxed ``images [B, S, S, 3]``."""
    return evaluator.forward(model, variables, images, rng)[0]


# NMS compiled once per setting (the keywords are static), run on the device after the model's forward pass.
suppress = jax.jit(
    non_max_suppression,
    static_argnames=("conf_thres", "iou_thres", "multi_label", "max_det", "classes", "agnostic"),
)


def detect(
    trained: TrainedModel,
    images: Sequence[np.ndarray],
    rng: jax.Array,
    rows: int | None = None,
    *,
    conf_thres: float = CONF_THRES,
    iou_thres: float = IOU_THRES,
    max_det: int = MAX_DET,
    classes: tuple[int, ...] | None = None,
    agnostic: bool = False,
) -> list[np.ndarray]:
    """Detections of uint8 RGB images (any sizes): per image ``[n, 6]`` = (x1, y1, x2, y2, score, class),
    best first, boxes in the image's own pixels. NMS as YOLOv5's ``detect.py`` (best class per box,
    class-aware unless ``agnostic``, only ``classes`` when given); ``rows``: the batch to pad to."""
    from snnjax.tasks.detection.data.letterbox import letterbox  # OpenCV, needed by detection only

    size = trained.info["img_size"]
    boxed = [letterbox(image, size) for image in images]
    x = pad_rows(np.stack([b[0] for b in boxed]), rows)
    decoded = decoded_predictions(trained.model, trained.variables, x, rng)
    found, counts = jax.device_get(
        suppress(
            decoded,
            conf_thres=conf_thres,
            iou_thres=iou_thres,
            max_det=max_det,
            classes=classes,
            agnostic=agnostic,
            multi_label=False,
        )
    )
    return [
        scale_boxes(found[i, : counts[i]], (size, size), image.shape[:2], ((gain, gain), pad))
        for i, (image, (_, gain, pad)) in enumerate(zip(images, boxed))
    ]


def yolo_labels(detections: np.ndarray, height: int, width: int) -> str:
    """YOLOv5 ``--save-txt --save-conf`` lines: ``class cx cy w h score``, centre and size in [0, 1]."""
    xywh = xyxy_to_xywh(detections[:, :4] / np.asarray([width, height, width, height], np.float64))
    return "".join(f"{int(d[5])} {' '.join(f'{v:.6f}' for v in box)} {d[4]:.6f}\n" for d, box in zip(detections, xywh))
