"""The object-detection experiment's settings, its presets and its run folder's name.

``PAPER`` (the defaults) is the paper's detection setting: YOLOv5n with SEW-ADD bottlenecks, T = 4, phase
encoding with LT, LC and SG, learnable LIF neurons (τ = 2, V_th = 1, sigmoid surrogate; every BatchNorm
after the encoder starts at γ = 2, see :class:`DetectorConfig`), VOC07+12 trainval -> VOC07 test at
320×320, 300 epochs at batch 24, and YOLOv5 v7.0's scratch-low recipe (docs/yolov5n.md §3): SGD with
Nesterov momentum, warm-up, accumulation to a nominal batch of 64, EMA weights, mosaic + affine + HSV +
flip augmentation. ``SYNTHETIC`` trains, evaluates (mAP@0.5 ≈ 0.1) and checkpoints in about 2–3 minutes
on 2 CPU cores: at YOLOv5's lr of 0.01 the spiking net learns too slowly for that budget (it needs ~3×
the ANN's epochs), hence lr 0.05, 3 classes and 16 epochs.

Nothing here imports OpenCV: the data pipeline does, and only when data is loaded.
"""

from __future__ import annotations

import dataclasses
import os

from snnjax.checks import TEXT, Accepts, integer, number, optional, tuple_of
from snnjax.engine.config import LoopConfig
from snnjax.layers import COMPUTE_DTYPES, SEW_MODES
from snnjax.models.spiking import SpikingConfig
from snnjax.models.yolo import MODES
from snnjax.settings import Settings, replace_paths, setting
from snnjax.tasks.detection.loss import LossConfig
from snnjax.tasks.detection.optimizer import SGDConfig

DATASETS = ("voc", "synthetic")
# The synthetic set's classes: six shapes (data/synthetic.py) in up to four hue bands.
SYNTHETIC_SHAPES = ("circle", "square", "triangle", "cross", "ring", "diamond")
MAX_SYNTHETIC_CLASSES = 4 * len(SYNTHETIC_SHAPES)


@dataclasses.dataclass(frozen=True)
class DetectorConfig(Settings):
    """YOLOv5n as an ANN or a spiking network (``snnjax.models.yolo.YOLOv5n``).

    The paper leaves the BatchNorm initialisation open. With PyTorch's γ = 1 a LIF (τ = 2, V_th = 1, hard
    reset) rarely fires at initialisation and the sigmoid surrogate (α = 4) passes so little gradient per
    layer that the backbone gets ~30× less than the ANN's; γ = τ·V_th = 2 restores the ANN's depth profile
    of gradients (γ >= 3 explodes), so the spiking default starts every BatchNorm after the encoder at 2
    (``experiments/init_gradients.py`` measures it; README, "Detection").
    """

    mode: str = setting("snn", "spiking network, or the YOLOv5n ANN baseline", choices=MODES)
    spiking: SpikingConfig = SpikingConfig(encoding="phase", neuron="learnable", bn_scale=2.0)
    sew: str = setting("add", "SEW connect function of the backbone bottlenecks", choices=SEW_MODES)
    dtype: str = setting("float32", "compute dtype (params stay float32)", choices=tuple(COMPUTE_DTYPES))


@dataclasses.dataclass(frozen=True)
class DataConfig(Settings):
    """Detection dataset (``snnjax.tasks.detection.data.load_detection``) at ``img_size`` (square);
    ``max_boxes``: label slots per training image (None: the bound no mosaic exceeds); ``synthetic_*``
    size the synthetic set (images, classes, most objects per image)."""

    dataset: str = setting("voc", "VOC07+12 (prepared tfds) or synthetic", choices=DATASETS)
    data_dir: str | None = setting(
        None, "prepared tensorflow-datasets folder", accepts=optional(TEXT, "$TFDS_DATA_DIR"), affects_results=False
    )
    img_size: int = setting(
        320,
        "square input size, a multiple of 32",
        accepts=Accepts(
            lambda v: integer(32).test(v) and v % 32 == 0, "a positive multiple of 32 (the largest stride)"
        ),
    )
    max_boxes: int | None = setting(
        None, "label slots per training image", accepts=optional(integer(1), "as many as a mosaic can hold")
    )
    synthetic_train: int = setting(1024, "synthetic training images", accepts=integer(1))
    synthetic_test: int = setting(256, "synthetic test images", accepts=integer(1))
    synthetic_classes: int = setting(6, "synthetic classes", accepts=integer(1, MAX_SYNTHETIC_CLASSES))
    synthetic_objects: int = setting(6, "most objects in one synthetic image", accepts=integer(1))
    synthetic_seed: int | None = setting(
        None, "seed of the synthetic set", accepts=optional(integer(), "the run's --seed")
    )


@dataclasses.dataclass(frozen=True)
class AugmentConfig(Settings):
    """Host augmentation (``data/augment.py``); the defaults are YOLOv5's ``hyp.scratch-low.yaml``
    (mosaic always, as its ``mosaic: 1.0``)."""

    mosaic: float = setting(
        1.0, "probability of a 4-image mosaic (otherwise one image, letterboxed)", accepts=number(0, 1)
    )

    hsv_gains: tuple[float, float, float] = setting(
        (0.015, 0.7, 0.4),
        "HSV gains (h, s, v): each channel scaled by 1 + U(−1, 1)·gain",
        accepts=tuple_of(3, number(0)),
    )
    scale: float = setting(0.5, "random zoom U(1 − scale, 1 + scale)", accepts=number(0, 1))
    translate: float = setting(0.1, "random shift U(0.5 − t, 0.5 + t)·size", accepts=number(0, 0.5))
    fliplr: float = setting(0.5, "probability of a horizontal flip", accepts=number(0, 1))


@dataclasses.dataclass(frozen=True)
class DetectionConfig(Settings):
    """One object-detection experiment (YOLOv5's recipe)."""

    loop: LoopConfig = LoopConfig(epochs=300, batch_size=24, eval_batch_size=48, seed=35)
    model: DetectorConfig = DetectorConfig()
    data: DataConfig = DataConfig()
    augment: AugmentConfig = AugmentConfig()
    loss: LossConfig = LossConfig()
    optim: SGDConfig = SGDConfig()


PAPER = DetectionConfig()
SYNTHETIC = replace_paths(
    PAPER,
    {
        "model.spiking.T": 2,
        "data.dataset": "synthetic",
        "data.img_size": 64,
        "data.synthetic_train": 512,
        "data.synthetic_test": 128,
        "data.synthetic_classes": 3,
        "loop.epochs": 16,
        "loop.batch_size": 16,
        "loop.eval_batch_size": 64,
        "optim.lr": 0.05,
        "optim.nominal_batch_size": 16,
        "optim.warmup_epochs": 1.0,
        "optim.min_warmup_steps": 0,
    },
)


def default_workdir(config: DetectionConfig) -> str:
    """``runs/voc/<dataset>_<img_size>_ann_s<seed>`` or
    ``runs/voc/<dataset>_<img_size>_<encoding>[+lt+lc+sg]_T<T>_<neuron>[_bn<γ>]_<sew>_s<seed>``."""
    m, d = config.model, config.data
    model = "ann" if m.mode == "ann" else f"{m.spiking.tag()}_{m.sew}"
    return os.path.join("runs", "voc", f"{d.dataset}_{d.img_size}_{model}_s{config.loop.seed}")
