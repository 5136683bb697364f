"""Object detection as a task of the engine (YOLOv5n, ANN or spiking, on VOC or synthetic data).

Training batches are augmented on the host (mosaic, affine, HSV, flip: ``snnjax.tasks.detection.data``),
become global device arrays split over the ``"data"`` mesh axis and train on YOLOv5's loss
(``snnjax.tasks.detection.loss``) with YOLOv5's SGD recipe and EMA (``optimizer``). Evaluation is the
:class:`~snnjax.tasks.detection.evaluator.DetectionEvaluator`; the best checkpoint is chosen by YOLOv5's
fitness, 0.1·mAP@0.5 + 0.9·mAP@0.5:0.95.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

from snnjax.checks import check
from snnjax.engine.programs import program_key
from snnjax.engine.sharding import global_batch, make_mesh, process_rows
from snnjax.layers import COMPUTE_DTYPES
from snnjax.models.yolo import YOLOv5n
from snnjax.models.yolo_weights import load_ultralytics_yolov5n
from snnjax.tasks.detection.config import DetectionConfig, DetectorConfig
from snnjax.tasks.detection.evaluator import DetectionEvaluator
from snnjax.tasks.detection.loss import yolo_loss
from snnjax.tasks.detection.optimizer import make_optimizer

if TYPE_CHECKING:  # the data pipeline needs OpenCV; the model, loss and evaluation do not
    from snnjax.tasks.detection.data.dataset import DetectionData


def build_model(config: DetectorConfig, num_classes: int) -> YOLOv5n:
    """The YOLOv5n described by ``config``."""
    return YOLOv5n(
        num_classes=num_classes,
        mode=config.mode,
        spiking=config.spiking,
        sew=config.sew,
        dtype=COMPUTE_DTYPES[config.dtype],
    )


def load_data(config: DetectionConfig) -> DetectionData:
    """The dataset named by ``config.data.dataset`` (synthetic sized by the ``synthetic_*`` settings)."""
    from snnjax.tasks.detection.data import load_detection

    d = config.data
    options = {}
    if d.dataset == "synthetic":
        options = dict(
            num_train=d.synthetic_train,
            num_test=d.synthetic_test,
            num_classes=d.synthetic_classes,
            max_objects=d.synthetic_objects,
            seed=config.loop.seed if d.synthetic_seed is None else d.synthetic_seed,
        )
    return load_detection(
        d.dataset, data_dir=d.data_dir, img_size=d.img_size, max_boxes=d.max_boxes, augment=config.augment, **options
    )


class DetectionTask:
    """YOLOv5's loss and mAP evaluation of ``model`` on ``dataset``; batches come from the host."""

    best_metric = "fitness"
    summary_keys = ("map50", "map50_95")
    eval_file = "eval.json"

    def __init__(self, config: DetectionConfig, dataset: DetectionData, model: YOLOv5n, mesh):
        self.config, self.dataset, self.model, self.mesh = config, dataset, model, mesh
        self.batch_size = config.loop.batch_size
        self.img_size, self.num_classes = dataset.img_size, dataset.num_classes
        self.steps_per_epoch = dataset.steps_per_epoch(self.batch_size)
        check(
            self.steps_per_epoch >= 1, "batch_size", self.batch_size, f"at most the {dataset.num_train} training images"
        )
        # What the programs take from the data besides the config: runs whose keys agree share them.
        self.program_key = program_key(config, mesh, self.img_size, self.num_classes, dataset.num_train)
        self.evaluators = (
            DetectionEvaluator(model, dataset, mesh, config.loop.eval_batch_size, program_key=self.program_key),
        )

    def model_info(self) -> dict:
        """What predicting needs besides the config (the run folder's ``model.json``): the class names and
        ``img_size``, the side of the square letterboxed input (uint8 RGB scaled to [0, 1])."""
        return {"task": "detection", "class_names": list(self.dataset.class_names), "img_size": self.img_size}

    def init_variables(self, rng: jax.Array) -> dict:
        x = jnp.zeros((1, self.img_size, self.img_size, 3), jnp.float32)
        variables = self.model.init({"params": rng, "encoding": rng}, x, train=False)
        return {k: v for k, v in variables.items() if k != "firing_rates"}

    def optimizer(self):
        return make_optimizer(self.config.optim, self.config.loop.epochs, self.steps_per_epoch, self.batch_size)

    def train_batches(self, epoch: int, rng: jax.Array, start: int = 0) -> Iterator[dict]:
        """The epoch's augmented batches from step ``start`` (deterministic for the run's seed, the epoch and
        the step) on the devices."""
        for batch in self.dataset.train_batches(epoch, self.batch_size, self.config.loop.seed, start=start):
            yield global_batch(process_rows(batch), self.mesh)

    def train_loss(self, params, model_state, batch, rng):
        """YOLOv5's loss (times the batch size) on images scaled to [0, 1]; logs its box/obj/cls parts."""
        images = batch["image"].astype(jnp.float32) / 255.0
        raw, updates = self.model.apply(
            {"params": params, **model_state}, images, train=True, mutable=list(model_state), rngs={"encoding": rng}
        )
        loss, parts = yolo_loss(
            raw,
            batch["boxes"],
            batch["classes"],
            batch["valid"],
            num_classes=self.num_classes,
            img_size=self.img_size,
            config=self.config.loss,
        )
        return loss, (dict(updates), parts)

    def load_variables(self, path: str) -> dict:
        """Variables of an ultralytics YOLOv5n state dict (``.pt``, or ``.npz`` of its arrays; ``--mode=ann``
        only: the spiking model takes checkpoint folders of the same model)."""
        check(
            self.model.mode == "ann",
            "init_from",
            path,
            "an orbax checkpoint folder (a workdir, its checkpoints or a step) of the same model; "
            "ultralytics YOLOv5n weights (.pt state_dict or .npz) only with --mode=ann",
        )
        return dict(load_ultralytics_yolov5n(path, self.model))


def setup(config: DetectionConfig) -> DetectionTask:
    """Devices, data and model of ``config``, as a task."""
    mesh = make_mesh(config.loop)
    dataset = load_data(config)
    return DetectionTask(config, dataset, build_model(config.model, dataset.num_classes), mesh)
