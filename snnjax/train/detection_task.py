"""Object detection as a task of the generic loop (YOLOv5n, ANN or spiking, on VOC or synthetic data).

Training batches are augmented on the host (mosaic, affine, HSV, flip: ``snnjax.data.detection``), become
global device arrays split over the ``"data"`` mesh axis and train on YOLOv5's loss
(``snnjax.train.detection``). Evaluation runs the model, ``decode`` and NMS jitted per batch, brings back
only the ``[B, 300, 6]`` detections and their counts, maps them to original-image pixels and scores them
under YOLOv5's ``val.py`` rule (primary) and the VOC07/VOC12 devkit rules (yolov5n spec §4), with the
per-layer firing rates. The best checkpoint is chosen by YOLOv5's fitness, 0.1·mAP@0.5 + 0.9·mAP@0.5:0.95.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from snnjax.boxes import scale_boxes
from snnjax.metrics import detection as detection_metrics
from snnjax.metrics.spikes import firing_rates
from snnjax.models.yolo import YOLOv5n, decode
from snnjax.train import loop
from snnjax.train.config import DetectionConfig, DetectorConfig, compute_dtype, to_dict
from snnjax.train.detection import yolo_loss

if TYPE_CHECKING:  # the data pipeline needs OpenCV; the model, loss and evaluation do not
    from snnjax.data.detection_dataset import DetectionData

# val.py's NMS settings (spec §4.1): confidence threshold, IoU threshold, detections kept per image.
CONF_THRES, IOU_THRES, MAX_DET = 0.001, 0.6, 300
SECONDARY_RULES = ("voc07", "voc12")


def build_model(config: DetectorConfig, num_classes: int) -> YOLOv5n:
    """The YOLOv5n described by ``config`` (raises ValueError naming a bad field)."""
    return YOLOv5n(
        num_classes=num_classes,
        mode=config.mode,
        spiking=config.spiking,
        sew=config.sew,
        dtype=compute_dtype(config.dtype),
    )


def load_data(config: DetectionConfig) -> DetectionData:
    """The dataset named by ``config.data.dataset`` (synthetic sized by the ``synthetic_*`` fields)."""
    from snnjax.data.detection import load_detection

    d = config.data
    options = {}
    if d.dataset == "synthetic":
        options = dict(
            num_train=d.synthetic_train,
            num_test=d.synthetic_test,
            num_classes=d.synthetic_classes,
            max_objects=d.synthetic_objects,
            seed=config.loop.seed,
        )
    return load_detection(d.dataset, data_dir=d.data_dir, img_size=d.img_size, max_boxes=d.max_boxes, **options)


def fitness(map50: float, map50_95: float) -> float:
    """YOLOv5's model fitness: 0.1·mAP@0.5 + 0.9·mAP@0.5:0.95."""
    return 0.1 * map50 + 0.9 * map50_95


def process_rows(batch: dict) -> dict:
    """This process's rows of a global host batch (every process builds the same global batch)."""
    count = jax.process_count()
    if count == 1:
        return batch
    rows = len(next(iter(batch.values()))) // count
    start = jax.process_index() * rows
    return {k: v[start : start + rows] for k, v in batch.items()}


class DetectionTask:
    """YOLOv5's loss and mAP evaluation of ``model`` on ``dataset``; batches come from the host."""

    best_metric = "fitness"
    data = None

    def __init__(self, config: DetectionConfig, dataset: DetectionData, model: YOLOv5n, mesh: Mesh):
        self.config, self.dataset, self.model, self.mesh = config, dataset, model, mesh
        self.batch_size = config.loop.batch_size
        self.eval_batch_size = config.loop.eval_batch_size
        self.img_size, self.num_classes = dataset.img_size, dataset.num_classes
        self.steps_per_epoch = dataset.steps_per_epoch(self.batch_size)
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size: {self.batch_size} exceeds the {dataset.num_train} training images")
        self._detect = jax.jit(self.detect, out_shardings=loop.replicated(mesh))

    def init_variables(self, rng: jax.Array) -> dict:
        x = jnp.zeros((1, self.img_size, self.img_size, 3), jnp.float32)
        variables = self.model.init({"params": rng, "encoding": rng}, x, train=False)
        return {k: v for k, v in variables.items() if k != "firing_rates"}

    def train_batches(self, epoch: int, rng: jax.Array) -> Iterator[dict]:
        """The epoch's augmented batches (deterministic for the run's seed and the epoch) on the devices."""
        for batch in self.dataset.train_batches(epoch, self.batch_size, self.config.loop.seed):
            yield loop.global_batch(process_rows(batch), self.mesh)

    def train_loss(self, params, model_state, batch, data, rng):
        """YOLOv5's loss (times the batch size) on images scaled to [0, 1]; logs its box/obj/cls parts."""
        images = batch["image"].astype(jnp.float32) / 255.0
        raw, updates = self.model.apply(
            {"params": params, **model_state}, images, train=True, mutable=list(model_state), rngs={"encoding": rng}
        )
        loss, parts = yolo_loss(
            raw, batch["boxes"], batch["classes"], batch["valid"], num_classes=self.num_classes, img_size=self.img_size
        )
        return loss, (dict(updates), parts)

    def detect(self, variables: dict, images: jax.Array, rng: jax.Array):
        """uint8 images -> (detections [B, MAX_DET, 6] in input pixels, counts [B], firing rates)."""
        raw, sown = self.model.apply(
            variables, images.astype(jnp.float32) / 255.0, train=False, mutable=["firing_rates"], rngs={"encoding": rng}
        )
        detections, counts = detection_metrics.non_max_suppression(
            decode(raw), conf_thres=CONF_THRES, iou_thres=IOU_THRES, max_det=MAX_DET
        )
        return detections, counts, firing_rates(sown.get("firing_rates", {}))

    def eval_batches(self) -> Iterator[dict]:
        """The test set's host batches (the last one padded, its padding rows with ``index == -1``)."""
        return self.dataset.eval_batches(self.eval_batch_size)

    def evaluate(self, variables: dict, rng: jax.Array) -> dict:
        """mAP of ``variables`` on the test set under every rule, firing rates and fitness (host-side)."""
        preds, gts, difficult, rate_sums, images = [], [], [], {}, 0
        for i, batch in enumerate(self.eval_batches()):
            local = loop.global_batch(process_rows({"image": batch["image"]}), self.mesh)
            detections, counts, rates = jax.device_get(
                self._detect(variables, local["image"], jax.random.fold_in(rng, i))
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
            images += len(real)
        return self.score(preds, gts, difficult, {k: v / images for k, v in rate_sums.items()})

    def original_pixels(self, detections: np.ndarray, batch: dict, row: int) -> np.ndarray:
        """Detections [n, 6] of image ``row`` of an evaluation batch, boxes mapped from the letterboxed
        input back to the original image's pixels (YOLOv5's ``scale_boxes``)."""
        ratio_pad = ((batch["gain"][row],) * 2, tuple(batch["pad"][row]))
        return scale_boxes(detections, (self.img_size,) * 2, tuple(batch["orig_hw"][row]), ratio_pad)

    def score(self, preds: list, gts: list, difficult: list, rates: dict) -> dict:
        """JSON-ready metrics: the primary (``yolov5`` rule) ``map50``, ``map50_95``, ``precision``,
        ``recall``, ``ap50_per_class`` and ``fitness``; ``<rule>_map50``/``_map50_95`` of the VOC rules."""
        primary = detection_metrics.evaluate(preds, gts, difficult, "yolov5", self.num_classes)
        metrics = {k: float(primary[k]) for k in ("map50", "map50_95", "precision", "recall")}
        metrics["fitness"] = fitness(metrics["map50"], metrics["map50_95"])
        for rule in SECONDARY_RULES:
            result = detection_metrics.evaluate(preds, gts, difficult, rule, self.num_classes)
            metrics.update({f"{rule}_{k}": float(result[k]) for k in ("map50", "map50_95")})
        names, aps = self.dataset.class_names, zip(primary["classes"], primary["ap50_per_class"])
        metrics["ap50_per_class"] = {names[c]: float(ap) for c, ap in aps}
        metrics["firing_rates"] = rates
        metrics["mean_firing_rate"] = float(np.mean(list(rates.values()))) if rates else None
        return metrics


def pretrained_variables(config: DetectionConfig) -> dict | None:
    """The evaluation variables (EMA if kept) of the orbax checkpoint at ``config.init_from``, whose model
    config must match; None when ``init_from`` is unset."""
    path = config.init_from
    if path is None:
        return None
    return loop.checkpoint_variables(path, to_dict(config))


def setup(config: DetectionConfig) -> DetectionTask:
    """Devices, data and model of ``config``, as a task."""
    mesh = loop.setup_devices(config.loop)
    dataset = load_data(config)
    return DetectionTask(config, dataset, build_model(config.model, dataset.num_classes), mesh)


def train(task: DetectionTask) -> dict:
    """Trains (or resumes, or reports the finished) run of ``task.config``; returns its results."""
    config = task.config
    return loop.train(
        task, config.loop, config.optim, to_dict(config), task.mesh, init_variables=lambda: pretrained_variables(config)
    )


def evaluate(task: DetectionTask) -> dict:
    """Evaluates ``init_from``, else the workdir's latest checkpoint (whose config must match), with the
    EMA variables when the run kept them; writes ``eval.json`` to the workdir."""
    config = task.config
    variables, source = pretrained_variables(config), config.init_from
    if variables is None:
        variables, source = loop.workdir_variables(config.loop.workdir, to_dict(config)), config.loop.workdir
    return loop.evaluate_only(
        task, config.loop, task.mesh, variables, "eval.json", {"source": source, "config": to_dict(config)}
    )


def run(config: DetectionConfig) -> dict:
    """Trains (or resumes), or with ``eval_only`` evaluates, the experiment ``config``."""
    task = setup(config)
    return evaluate(task) if config.eval_only else train(task)
