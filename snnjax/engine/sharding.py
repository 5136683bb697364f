"""Devices and data parallelism: one ``Mesh`` axis ``"data"``, parameters replicated, batches split.

This is the successor of ``pmap``: one ``jax.jit`` program over the mesh, with XLA inserting the
gradient and BatchNorm reductions. Multi-host runs start JAX's runtime (``jax.distributed``) and each
process supplies its own rows of every batch (:func:`global_batch`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from snnjax.checks import check
from snnjax.engine.config import LoopConfig

DATA_AXIS = "data"


def make_mesh(config: LoopConfig) -> Mesh:
    """Starts JAX's multi-process runtime when configured; returns the 1-D ``"data"`` mesh of
    ``config.num_devices`` devices (all by default). The batch sizes must split evenly over them."""
    if config.distributed:
        names = ("coordinator_address", "num_processes", "process_id")
        jax.distributed.initialize(**{k: getattr(config, k) for k in names if getattr(config, k) is not None})
    devices = jax.devices()
    n = config.num_devices or len(devices)
    check(1 <= n <= len(devices), "num_devices", n, f"an int in [1, {len(devices)}] (the devices present)")
    for name in ("batch_size", "eval_batch_size"):
        size = getattr(config, name)
        check(size % n == 0, name, size, f"a multiple of the {n} devices")
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the ``"data"`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Host arrays (identical on every process) -> global arrays replicated over ``mesh``."""
    sharding = replicated(mesh)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree_util.tree_map(put, tree)


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
    """This process's rows of a batch (host arrays) -> global arrays split over ``"data"``."""
    sharding = batch_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def process_rows(batch: dict) -> dict:
    """This process's rows of a global host batch that every process built identically."""
    count = jax.process_count()
    if count == 1:
        return batch
    rows = len(next(iter(batch.values()))) // count
    start = jax.process_index() * rows
    return {k: v[start : start + rows] for k, v in batch.items()}


def processes_differing(values: list[bytes]) -> list[list[int]]:
    """For each of ``values`` (bytes every process computes), the processes whose value differs from
    process 0's: ``[]`` everywhere in a single process. Every process gets the same answer."""
    if jax.process_count() == 1:
        return [[] for _ in values]
    digests = np.stack([np.frombuffer(hashlib.sha256(v).digest(), np.uint8) for v in values])
    gathered = multihost_utils.process_allgather(digests)  # [processes, values, 32]
    return [
        [p for p in range(len(gathered)) if not np.array_equal(gathered[p, i], gathered[0, i])]
        for i in range(len(values))
    ]


def barrier(name: str) -> None:
    """Waits until every process reaches the barrier ``name`` (nothing in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def needs_sync(mesh: Mesh) -> bool:
    """XLA's CPU collectives can deadlock with many multi-device steps in flight: wait on each."""
    return mesh.devices.size > 1 and mesh.devices.flat[0].platform == "cpu"


def is_main() -> bool:
    """Whether this is process 0, the one that writes files and prints."""
    return jax.process_index() == 0
