"""Image classification: QKFormer with a temporal encoder on CIFAR-10/100, synthetic or npz images."""

from snnjax.tasks.classification.config import PAPER, SYNTHETIC, ClassificationConfig, default_workdir
from snnjax.tasks.classification.task import ClassificationTask, setup

__all__ = ["PAPER", "SYNTHETIC", "ClassificationConfig", "ClassificationTask", "default_workdir", "setup"]
