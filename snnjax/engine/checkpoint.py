"""Checkpoints with orbax (the only module that imports it): written synchronously, verified when read.

A checkpoint directory holds one folder per saved step (the number of train steps taken), each with the
train state (``state``), the run's config (``config``), the state's :func:`digest` (``digest``) and, for
a checkpoint saved inside an epoch, the loop's progress through it (``progress``). The last ``keep``
checkpoints are kept, plus the best one by an evaluation metric.

Saving is synchronous, so a failed write (a full disk, a folder without write permission) raises
:class:`CheckpointError` in the caller at once; orbax's asynchronous saves left threads waiting for a
folder that was never made, which kept the process alive after the error. Restoring recomputes the
digest and counts non-finite values: a damaged checkpoint (:class:`DamagedCheckpoint`) is moved aside
to ``<directory>_damaged/`` and :meth:`Checkpoints.restore_latest` takes the one before it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from snnjax.checks import integer

DIGEST, PROGRESS = "digest", "progress"


class CheckpointError(RuntimeError):
    """A checkpoint could not be written, or no intact checkpoint could be read."""


class DamagedCheckpoint(CheckpointError):
    """A saved checkpoint is unreadable, altered or holds non-finite values."""


def digest(tree: Any) -> str:
    """SHA-256 over the sorted hashes of a pytree's leaves (dtype, shape and bytes of each): independent
    of the containers, so a state restored without a target (nested dicts) has its saved digest."""
    hashes = []
    for leaf in jax.tree_util.tree_leaves(tree):
        array = np.ascontiguousarray(np.asarray(leaf))
        hashes.append(hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest())
    return hashlib.sha256("".join(sorted(hashes)).encode()).hexdigest()


def nonfinite_count(tree: Any) -> int:
    """How many NaN or ±inf values the floating leaves of ``tree`` hold."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return int(sum(np.size(x) - np.count_nonzero(np.isfinite(x)) for x in leaves if np.issubdtype(x.dtype, np.inexact)))


def report(message: str) -> None:
    """Prints ``message`` to stderr on process 0."""
    if jax.process_index() == 0:
        print(message, file=sys.stderr, flush=True)


class Restored(NamedTuple):
    """What :meth:`Checkpoints.restore_latest` found: the state and its step (None, None without any
    checkpoint) and the damaged checkpoints it moved aside, as ``(step, reason)``."""

    state: Any
    step: int | None
    damaged: list[tuple[int, str]]


class Checkpoints:
    """Saves, verifies and restores train states under ``directory``.

    Args:
      directory: where step folders go (created when missing, unless ``read_only``).
      keep: number of most recent checkpoints to keep.
      best_metric: name of a higher-is-better entry of the ``metrics`` given to :meth:`save`; the
        best checkpoint by it is kept in addition to the last ``keep``.
      read_only: only read (no folder is created or written).
    """

    def __init__(self, directory: str, *, keep: int = 2, best_metric: str | None = None, read_only: bool = False):
        integer(1)("keep", keep)
        self.directory = os.path.abspath(directory)
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
            create=not read_only,
            read_only=read_only,
            enable_async_checkpointing=False,
            preservation_policy=checkpoint_managers.AnyPreservationPolicy(policies),
        )
        try:
            if not read_only:
                os.makedirs(self.directory, exist_ok=True)
                os.rmdir(tempfile.mkdtemp(dir=self.directory))
            handlers = {"state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()}
            handlers |= {DIGEST: ocp.JsonCheckpointHandler(), PROGRESS: ocp.JsonCheckpointHandler()}
            self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)
        except OSError as e:
            raise CheckpointError(
                f"checkpoints folder {self.directory}: {e.strerror or e}; it must be a writable folder"
            ) from None

    def all_steps(self) -> list[int]:
        """Every saved step, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The most recent saved step, or None."""
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The step with the best metric (the latest step when no metric is tracked), or None."""
        return self._manager.best_step()

    def save(
        self, step: int, state: Any, *, config: dict, metrics: dict | None = None, progress: dict | None = None
    ) -> None:
        """Saves ``state``, its digest, ``config`` and, for a checkpoint inside an epoch, the loop's
        ``progress`` (JSON) as ``step``; returns once they are on disk. Raises :class:`CheckpointError`
        (nothing is kept of the step) when the state is not finite or the write fails."""
        host = jax.device_get(state)
        bad = nonfinite_count(host)
        if bad:
            raise CheckpointError(f"checkpoint {step}: refusing to save a state with {bad} non-finite values")
        items = {DIGEST: ocp.args.JsonSave({"sha256": digest(host)})}
        if progress is not None:
            items[PROGRESS] = ocp.args.JsonSave(progress)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config), **items)
        try:
            self._manager.save(step, args=args, metrics=metrics)
        except Exception as e:  # orbax and tensorstore raise many types for one failed write
            raise CheckpointError(
                f"saving checkpoint {step} in {self.directory} failed: {e}; free space or fix permissions there, "
                "then resume (the checkpoints before it are intact)"
            ) from e

    def verify(self, step: int, state: Any) -> None:
        """Raises :class:`DamagedCheckpoint` unless ``state`` (restored from ``step``) matches its saved
        digest and is finite. Checkpoints written without a digest are checked for finiteness only."""
        host = jax.device_get(state)
        bad = nonfinite_count(host)
        if bad:
            raise DamagedCheckpoint(f"{bad} non-finite values")
        if os.path.isdir(os.path.join(self.directory, str(step), DIGEST)):
            saved = self._restore(step, **{DIGEST: ocp.args.JsonRestore()})[DIGEST]["sha256"]
            if saved != digest(host):
                raise DamagedCheckpoint("its arrays differ from the digest saved with them")

    def _restore(self, step: int, **items) -> Any:
        try:
            return self._manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:  # a missing, truncated or garbled file surfaces as many exception types
            raise DamagedCheckpoint(f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e

    def restore(self, step: int, target: Any = None) -> Any:
        """The verified state saved at ``step``: in the structure, shapes and shardings of ``target`` (a
        pytree of arrays or ``jax.ShapeDtypeStruct``), or without one as saved (nested dicts), each array
        whole on this process's first device, whatever the devices and processes that saved it."""
        if target is None:
            target = self._as_saved(step)
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        state = self._restore(step, state=ocp.args.StandardRestore(abstract)).state
        self.verify(step, state)
        return state

    def _as_saved(self, step: int) -> Any:
        """The saved state's structure, shapes and dtypes (from its metadata), on this process's first device."""
        try:
            metadata = ocp.StandardCheckpointer().metadata(os.path.join(self.directory, str(step), "state"))
        except Exception as e:  # a missing or garbled metadata file
            raise DamagedCheckpoint(f"unreadable metadata ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
        tree = getattr(metadata.item_metadata, "tree", metadata.item_metadata)
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree_util.tree_map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
            tree,
            is_leaf=lambda x: hasattr(x, "shape"),
        )

    def restore_latest(self, target: Any = None) -> Restored:
        """The latest intact checkpoint (see :meth:`restore`). Damaged ones on the way are moved aside
        and reported; raises :class:`CheckpointError` when checkpoints exist but none is intact."""
        damaged = []
        for step in reversed(self.all_steps()):
            try:
                return Restored(self.restore(step, target), step, damaged)
            except DamagedCheckpoint as e:
                damaged.append((step, str(e)))
                self.quarantine(step)
        if damaged:
            listed = "; ".join(f"{step}: {reason}" for step, reason in damaged)
            raise CheckpointError(
                f"no intact checkpoint in {self.directory} (damaged, moved to {self.directory}_damaged: {listed}); "
                "start afresh in another --workdir"
            )
        return Restored(None, None, [])

    def quarantine(self, step: int) -> None:
        """Moves the folder of ``step`` to ``<directory>_damaged/`` (kept for inspection, out of the way)."""
        if jax.process_index() == 0:
            aside = f"{self.directory}_damaged"
            os.makedirs(aside, exist_ok=True)
            target = os.path.join(aside, str(step))
            if os.path.exists(target):
                target = tempfile.mkdtemp(prefix=f"{step}_", dir=aside)
            shutil.move(os.path.join(self.directory, str(step)), target)
        self._manager.reload()

    def restore_config(self, step: int) -> dict:
        """The config saved with ``step``."""
        return self._restore(step, config=ocp.args.JsonRestore()).config

    def restore_progress(self, step: int) -> dict | None:
        """The loop's progress saved with a checkpoint inside an epoch, else None."""
        if not os.path.isdir(os.path.join(self.directory, str(step), PROGRESS)):
            return None
        return self._restore(step, **{PROGRESS: ocp.args.JsonRestore()})[PROGRESS]

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def locate(path: str) -> tuple[str, int | None]:
    """Resolves a workdir or a checkpoint directory to ``(directory, None)`` and one step folder to
    ``(directory, step)``. Raises FileNotFoundError naming the path when it holds no checkpoint."""
    path = os.path.abspath(path)
    if os.path.isdir(os.path.join(path, "checkpoints")):
        path = os.path.join(path, "checkpoints")
    if os.path.isdir(os.path.join(path, "state")) and os.path.basename(path).isdigit():
        return os.path.dirname(path), int(os.path.basename(path))
    if not (os.path.isdir(path) and any(d.isdigit() for d in os.listdir(path))):
        raise FileNotFoundError(
            f"no orbax checkpoint at {path!r} (expected a workdir, its 'checkpoints' folder or a step folder)"
        )
    return path, None


def load_state(path: str) -> tuple[Any, dict]:
    """The verified raw state (nested dicts of arrays) and config of the checkpoint at ``path``: that step
    folder, or the latest intact checkpoint of a workdir or checkpoints folder (damaged ones reported)."""
    directory, step = locate(path)
    with Checkpoints(directory, read_only=step is not None) as checkpoints:
        if step is None:
            restored = checkpoints.restore_latest()
            for bad, reason in restored.damaged:
                report(f"checkpoint {bad} in {directory} is damaged ({reason}); moved aside, using {restored.step}")
            state, step = restored.state, restored.step
        else:
            state = checkpoints.restore(step)
        return state, checkpoints.restore_config(step)
