"""Object detection: YOLOv5n (ANN or spiking, with a temporal encoder) on PASCAL VOC or synthetic images.

Importing this package does not import OpenCV; loading data does.
"""

from snnjax.tasks.detection.config import PAPER, SYNTHETIC, DetectionConfig, default_workdir
from snnjax.tasks.detection.task import DetectionTask, setup

__all__ = ["PAPER", "SYNTHETIC", "DetectionConfig", "DetectionTask", "default_workdir", "setup"]
