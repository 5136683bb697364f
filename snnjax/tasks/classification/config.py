"""The image-classification experiment's settings, its presets and its run folder's name.

``PAPER`` (the defaults) is the paper's CIFAR setting: QKFormer-3-256, T = 4, TTFS encoding with LT, LC
and SG, learnable LIF neurons, and the official QKFormer recipe (docs/qkformer.md §2): AdamW 1e-3, weight
decay 0.06, batch 64, 400 + 10 cooldown epochs, cosine with 20 warm-up epochs, RandAugment + mixup +
label smoothing + random erasing, seed 35 (the paper's others: 1000 and 0). ``SYNTHETIC`` trains,
evaluates and checkpoints in about two minutes on 2 CPU cores (RandAugment alone adds ~25 s of CPU
compile time, hence crop_flip).
"""

from __future__ import annotations

import dataclasses
import os
import re

from snnjax.checks import BOOL, TEXT, Accepts, check, integer, number, optional
from snnjax.engine.config import LoopConfig
from snnjax.layers import COMPUTE_DTYPES
from snnjax.models.qkformer import MODEL_NAME
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import Settings, replace_paths, setting
from snnjax.tasks.classification.data.augment import POLICIES
from snnjax.tasks.classification.optimizer import OptimConfig

DATASET_NAMES = ("cifar10", "cifar100", "synthetic", "npz:PATH")


def _is_dataset(name) -> bool:
    if not isinstance(name, str):
        return False
    return name in DATASET_NAMES[:3] or (name.startswith("npz:") and os.path.isfile(name[len("npz:") :]))


@dataclasses.dataclass(frozen=True)
class ModelConfig(Settings):
    """QKFormer ``name`` ("L-D") with its encoder and neurons (``snnjax.models.qkformer.qkformer``)."""

    name: str = setting(
        "3-256", "QKFormer 'L-D': 3-256 (paper), 4-384 (official CIFAR config), ...", flag="model", accepts=MODEL_NAME
    )
    spiking: SpikingConfig = SpikingConfig(encoding="ttfs", neuron="learnable")
    official_ssa_scan: bool = setting(
        False, "reproduce the official SSA proj_lif scan over T·B (needed for official weights)", accepts=BOOL
    )
    dtype: str = setting("float32", "compute dtype (params stay float32)", choices=tuple(COMPUTE_DTYPES))

    def validate(self) -> None:
        accepted = "True only with neuron='lif' (the learnable LIF has per-time-step parameters)"
        check(not self.official_ssa_scan or self.spiking.neuron == "lif", "official_ssa_scan", True, accepted)


@dataclasses.dataclass(frozen=True)
class DataConfig(Settings):
    """Dataset and on-device augmentation (``snnjax.tasks.classification.data``); ``synthetic_*`` size
    the synthetic set."""

    dataset: str = setting(
        "cifar10",
        "cifar10, cifar100, synthetic or npz:PATH (your uint8 NHWC x_train, y_train, x_test, y_test)",
        accepts=Accepts(_is_dataset, "cifar10, cifar100, synthetic, or npz:PATH of an existing file"),
    )
    data_dir: str | None = setting(
        None, "prepared tensorflow-datasets folder", accepts=optional(TEXT, "$TFDS_DATA_DIR"), affects_results=False
    )
    augment: str = setting("official", "train augmentation", choices=POLICIES)
    label_smoothing: float = setting(0.1, "label smoothing of the soft targets", accepts=number(0, 1, high_open=True))
    mixup_alpha: float = setting(0.5, "mixup Beta(α, α) (official augmentation; 0: off)", accepts=number(0))
    erase_prob: float = setting(
        0.25, "random-erasing probability (official augmentation; 0: off)", accepts=number(0, 1)
    )
    synthetic_train: int = setting(2048, "synthetic training images", accepts=integer(1))
    synthetic_test: int = setting(512, "synthetic test images", accepts=integer(1))
    synthetic_image_size: int = setting(32, "synthetic images' side", flag="image_size", accepts=integer(1))
    synthetic_classes: int = setting(10, "synthetic classes", accepts=integer(2))
    synthetic_seed: int | None = setting(
        None, "seed of the synthetic set", accepts=optional(integer(), "the run's --seed")
    )


@dataclasses.dataclass(frozen=True)
class ClassificationConfig(Settings):
    """One image-classification experiment. ``shuffle_time``: at evaluation, permute every neuron's spike
    train over time (paper, Appendix B)."""

    loop: LoopConfig = LoopConfig(epochs=410, batch_size=64, eval_batch_size=64, seed=35)
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    shuffle_time: bool = setting(
        False,
        "with --eval_only: permute each neuron's spikes over time (Appendix B); writes eval_shuffle_time.json",
        accepts=BOOL,
        affects_results=False,
    )

    def validate(self) -> None:
        self.optim.check_epochs(self.loop.epochs)
        check(not self.shuffle_time or self.loop.eval_only, "shuffle_time", True, "True only with eval_only")


PAPER = ClassificationConfig()
SYNTHETIC = replace_paths(
    PAPER,
    {
        "model.name": "3-64",
        "model.spiking.T": 2,
        "data.dataset": "synthetic",
        "data.synthetic_image_size": 16,
        "data.augment": "crop_flip",
        "loop.epochs": 8,
        "loop.batch_size": 32,
        "loop.eval_batch_size": 128,
        "optim.lr": 5e-3,
        "optim.warmup_epochs": 0,
        "optim.cooldown_epochs": 0,
    },
)


def default_workdir(config: ClassificationConfig) -> str:
    """``runs/cifar/<dataset>_<model>_<encoding>[+lt+lc+sg]_T<T>_<neuron>[_bn<γ>]_s<seed>``."""
    name = os.path.splitext(os.path.basename(config.data.dataset))[0]
    dataset = re.sub(r"[^A-Za-z0-9]+", "-", name)
    return os.path.join(
        "runs", "cifar", f"{dataset}_{config.model.name}_{config.model.spiking.tag()}_s{config.loop.seed}"
    )
