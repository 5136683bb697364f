"""The detection evaluator: YOLOv5n + decode + NMS jitted on the devices, mAP scored on the host.

Per evaluation batch only the ``[B, 300, 6]`` detections and their counts come back; they are mapped to
original-image pixels and scored under YOLOv5's ``val.py`` rule (primary) and the VOC07/VOC12 devkit
rules (docs/yolov5n.md §4), with per-layer firing rates, operation counts and energy
(``snnjax.metrics.energy``), YOLOv5's fitness and each class's precision–recall curve.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from snnjax.boxes import scale_boxes
from snnjax.engine.compiler import jit_over
from snnjax.engine.programs import shared
from snnjax.engine.sharding import global_batch, process_rows
from snnjax.metrics import detection as detection_metrics
from snnjax.metrics import energy
from snnjax.metrics.spikes import firing_rates
from snnjax.models.yolo import YOLOv5n, decode

if TYPE_CHECKING:  # the data pipeline needs OpenCV; the model and evaluation do not
    from snnjax.tasks.detection.data.dataset import DetectionData

# val.py's NMS settings (docs/yolov5n.md §4.1): confidence threshold, IoU threshold, detections per image.
CONF_THRES, IOU_THRES, MAX_DET = 0.001, 0.6, 300
SECONDARY_RULES = ("voc07", "voc12")


def fitness(map50: float, map50_95: float) -> float:
    """YOLOv5's model fitness: 0.1·mAP@0.5 + 0.9·mAP@0.5:0.95."""
    return 0.1 * map50 + 0.9 * map50_95


def detect(
    model: YOLOv5n,
    variables: dict,
    images: jax.Array,
    rng: jax.Array,
    real: jax.Array | None = None,
    *,
    conf_thres: float = CONF_THRES,
    iou_thres: float = IOU_THRES,
    max_det: int = MAX_DET,
    classes: tuple[int, ...] | None = None,
    agnostic: bool = False,
    multi_label: bool = True,
):
    """uint8 letterboxed images ``[B, S, S, 3]`` -> (detections ``[B, max_det, 6]`` = (x1, y1, x2, y2, score,
    class) in input pixels, counts ``[B]``, firing rates over the images flagged ``real [B]`` (all by
    default), their operation sums): :func:`forward`, then :func:`snnjax.metrics.detection.non_max_suppression`
    with the keywords (defaults: ``val.py``'s). Jittable (the keywords static)."""
    decoded, rates, operations = forward(model, variables, images, rng, real)
    detections, counts = detection_metrics.non_max_suppression(
        decoded,
        conf_thres=conf_thres,
        iou_thres=iou_thres,
        max_det=max_det,
        classes=classes,
        agnostic=agnostic,
        multi_label=multi_label,
    )
    return detections, counts, rates, operations


def forward(model: YOLOv5n, variables: dict, images: jax.Array, rng: jax.Array, real: jax.Array | None = None):
    """uint8 letterboxed images ``[B, S, S, 3]`` -> (decoded predictions ``[B, N, 5 + nc]`` (xywh input
    pixels, objectness, class probabilities), firing rates over the images flagged ``real [B]`` (all by
    default), their operation sums), in evaluation mode. Jittable."""
    real = jnp.ones(images.shape[0], bool) if real is None else real
    with nn.intercept_methods(energy.operations_interceptor(images.shape[0])):
        raw, sown = model.apply(
            variables,
            images.astype(jnp.float32) / 255.0,
            train=False,
            mutable=["firing_rates", energy.COLLECTION],
            rngs={"encoding": rng},
        )
    operations = energy.operation_sums(sown[energy.COLLECTION], real)
    return decode(raw), firing_rates(sown.get("firing_rates", {}), real), operations


class DetectionEvaluator:
    """mAP under every rule, fitness and firing rates of ``model`` on ``dataset``'s test split, in
    batches of ``batch_size`` (global) over ``mesh``."""

    def __init__(
        self, model: YOLOv5n, dataset: DetectionData, mesh: Mesh, batch_size: int, program_key: Hashable | None = None
    ):
        self.model, self.dataset, self.mesh, self.batch_size = model, dataset, mesh, batch_size
        self.img_size, self.num_classes = dataset.img_size, dataset.num_classes
        self._detect = shared(program_key, "detect", lambda: jit_over(mesh, self.detect))

    def detect(self, variables: dict, images: jax.Array, rng: jax.Array, real: jax.Array | None = None):
        """:func:`detect` of the evaluator's model with ``val.py``'s NMS settings (``[B, MAX_DET, 6]``)."""
        return detect(self.model, variables, images, rng, real)

    def __call__(self, variables: dict, rng: jax.Array) -> dict:
        """mAP of ``variables`` on the test set under every rule, firing rates and fitness (host-side)."""
        preds, gts, difficult, rate_sums, operations, images = [], [], [], {}, None, 0
        for i, batch in enumerate(self.dataset.eval_batches(self.batch_size)):
            local = global_batch(process_rows({"image": batch["image"], "real": batch["index"] >= 0}), self.mesh)
            detections, counts, rates, ops = jax.device_get(
                self._detect(variables, local["image"], jax.random.fold_in(rng, i), local["real"])
            )
            real = np.flatnonzero(batch["index"] >= 0)
            preds += [self.original_pixels(detections[j, : counts[j]], batch, j) for j in real]
            gts += [
                np.concatenate([batch["gt_boxes"][j], batch["gt_classes"][j, :, None]], 1)[batch["gt_valid"][j]]
                for j in real
            ]
            difficult += [batch["gt_difficult"][j][batch["gt_valid"][j]] for j in real]
            for name, rate in rates.items():
                rate_sums[name] = rate_sums.get(name, 0.0) + float(rate) * len(real)
            operations = ops if operations is None else jax.tree_util.tree_map(np.add, operations, ops)
            images += len(real)
        return self.score(preds, gts, difficult, {k: v / images for k, v in rate_sums.items()}, operations or {})

    def original_pixels(self, detections: np.ndarray, batch: dict, row: int) -> np.ndarray:
        """Detections [n, 6] of image ``row`` of an evaluation batch, boxes mapped from the letterboxed
        input back to the original image's pixels (YOLOv5's ``scale_boxes``)."""
        ratio_pad = ((batch["gain"][row],) * 2, tuple(batch["pad"][row]))
        return scale_boxes(detections, (self.img_size,) * 2, tuple(batch["orig_hw"][row]), ratio_pad)

    def score(self, preds: list, gts: list, difficult: list, rates: dict, operations: dict) -> dict:
        """JSON-ready metrics: the primary (``yolov5`` rule) ``map50``, ``map50_95``, ``precision``,
        ``recall``, ``ap50_per_class``, ``pr_curves`` (per class, precision at recall 0, 0.01, …, 1) and
        ``fitness``; ``<rule>_map50``/``_map50_95`` of the VOC rules; firing rates and energy."""
        primary = detection_metrics.evaluate(preds, gts, difficult, "yolov5", self.num_classes)
        metrics = {k: float(primary[k]) for k in ("map50", "map50_95", "precision", "recall")}
        metrics["fitness"] = fitness(metrics["map50"], metrics["map50_95"])
        for rule in SECONDARY_RULES:
            result = detection_metrics.evaluate(preds, gts, difficult, rule, self.num_classes)
            metrics.update({f"{rule}_{k}": float(result[k]) for k in ("map50", "map50_95")})
        names, aps = self.dataset.class_names, zip(primary["classes"], primary["ap50_per_class"])
        metrics["ap50_per_class"] = {names[c]: float(ap) for c, ap in aps}
        curves = zip(primary["classes"], primary["pr_curves"])
        metrics["pr_curves"] = {names[c]: [round(float(p), 4) for p in curve] for c, curve in curves}
        metrics["firing_rates"] = rates
        metrics["mean_firing_rate"] = float(np.mean(list(rates.values()))) if rates else None
        metrics.update(energy.summary(operations))
        return metrics
