"""Object-detection data: VOC07+12 and a synthetic set in host memory, YOLOv5's host augmentation
(mosaic, affine, HSV, flip; OpenCV on worker threads) and letterboxed evaluation batches."""

from snnjax.tasks.detection.data.dataset import DetectionData
from snnjax.tasks.detection.data.datasets import load_detection

__all__ = ["DetectionData", "load_detection"]
