"""Checkpoints with orbax (the only module that imports it).

A checkpoint directory holds one folder per saved step (the number of finished epochs), each with
the train state (``state``, a pytree of arrays) and the run's config (``config``, JSON). The last
``keep`` checkpoints are kept, plus the best one by an evaluation metric.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from snnjax.checks import integer


class Checkpoints:
    """Saves and restores train states under ``directory``.

    Args:
      directory: where step folders go (created when missing).
      keep: number of most recent checkpoints to keep.
      best_metric: name of a higher-is-better entry of the ``metrics`` given to :meth:`save`; the
        best checkpoint by it is kept in addition to the last ``keep``.
    """

    def __init__(self, directory: str, *, keep: int = 2, best_metric: str | None = None):
        integer(1)("keep", keep)
        policies = [checkpoint_managers.LatestN(n=keep)]
        best_fn = None
        if best_metric is not None:
            best_fn = lambda metrics: float(metrics[best_metric])  # noqa: E731
            policies.append(
                checkpoint_managers.BestN(get_metric_fn=best_fn, n=1, keep_checkpoints_without_metrics=False)
            )
        options = ocp.CheckpointManagerOptions(
            best_fn=best_fn,
            best_mode="max",
            create=True,
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        )
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "config"))

    def latest_step(self) -> int | None:
        """The most recent saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step with the best metric (the latest step when no metric is tracked), or None."""
        return self._manager.best_step()

    def save(self, step: int, state: Any, *, config: dict, metrics: dict | None = None) -> None:
        """Saves ``state`` and ``config`` as ``step`` (asynchronously: arrays are copied off the device
        before this returns, so the caller may donate them right after)."""
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config)),
            metrics=metrics,
        )

    def restore(self, step: int, target: Any) -> Any:
        """Restores the state saved at ``step`` into the structure, shapes and shardings of ``target``
        (a pytree of arrays or ``jax.ShapeDtypeStruct``)."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        return restored.state

    def restore_config(self, step: int) -> dict:
        """The config saved with ``step``."""
        return self._manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore())).config

    def restore_raw(self, step: int) -> Any:
        """The state saved at ``step`` as saved (nested dicts of arrays), without a target."""
        return self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are written."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def locate(path: str) -> tuple[str, int]:
    """Resolves a workdir, a checkpoint directory or one step folder to ``(directory, step)``.

    A workdir or checkpoint directory resolves to its latest step. Raises FileNotFoundError.
    """
    path = os.path.abspath(path)
    if os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "checkpoints")
    if os.path.isdir(os.path.join(path, "state")) and os.path.basename(path).isdigit():
        return os.path.dirname(path), int(os.path.basename(path))
    steps = [int(d) for d in os.listdir(path) if d.isdigit()] if os.path.isdir(path) else []
    if not steps:
        raise FileNotFoundError(
            f"init_from: no orbax checkpoint found at {path!r} "
            "(expected a workdir, its 'checkpoints' folder or a step folder)"
        )
    return path, max(steps)


def load_state(path: str) -> tuple[Any, dict]:
    """The raw saved state (nested dicts of arrays) and config of the checkpoint at ``path``."""
    directory, step = locate(path)
    with Checkpoints(directory) as checkpoints:
        return checkpoints.restore_raw(step), checkpoints.restore_config(step)
