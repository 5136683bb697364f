"""Live logging: the per-epoch records of ``metrics.jsonl`` also written as TensorBoard scalars.

Uses tensorboardX (a small writer without TensorFlow), imported only when asked for. Numbers become
scalars named by their key; flat maps of numbers (per-layer firing rates, per-class AP) become one scalar
per entry, ``<key>/<entry>``. Only process 0 writes.
"""

from __future__ import annotations

import contextlib
from typing import Any

from snnjax.engine.sharding import is_main


def scalars(record: dict) -> dict[str, float]:
    """The numbers of a ``metrics.jsonl`` record, flat: ``{"eval_firing_rates": {"a": 0.1}}`` ->
    ``{"eval_firing_rates/a": 0.1}``; text, None and booleans are left out."""
    found = {}
    for key, value in record.items():
        items = value.items() if isinstance(value, dict) else ((None, value),)
        for entry, number in items:
            if isinstance(number, int | float) and not isinstance(number, bool):
                found[key if entry is None else f"{key}/{entry}"] = float(number)
    return found


class ScalarLog(contextlib.AbstractContextManager):
    """Writes records as TensorBoard scalars into ``logdir`` at their ``step``; does nothing when
    ``logdir`` is None or on processes other than 0."""

    def __init__(self, logdir: str | None):
        self.writer = None
        if logdir is not None and is_main():
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise ImportError("--tensorboard needs tensorboardX: pip install tensorboardX") from None
            self.writer = SummaryWriter(logdir)

    def write(self, record: dict, step: int) -> None:
        if self.writer is not None:
            for name, value in scalars(record).items():
                self.writer.add_scalar(name, value, step)
            self.writer.flush()

    def __exit__(self, *exc: Any) -> None:
        if self.writer is not None:
            self.writer.close()
