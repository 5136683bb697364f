"""Data sources both tasks share: prepared tensorflow-datasets splits read without TensorFlow
(``tfds_source``) and the one-time preparation command (``python -m snnjax.data.prepare``).

Each task's own pipeline lives in ``snnjax.tasks.<task>.data``.
"""

from snnjax.data.tfds_source import DatasetNotPreparedError

__all__ = ["DatasetNotPreparedError"]
