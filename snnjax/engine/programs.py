"""Compiled programs shared by the runs of one process whose tasks have the same program key.

Runs that differ only in their seed and run folder (the seeds of one setting of the paper's grid) trace
and compile the same programs: the seed reaches them as an argument, never as a constant. A task that
says so (its ``program_key``, built by :func:`program_key`) lets the engine hand a later run the programs
an earlier run built, with no tracing, compiling or reading of the persistent cache. The key is the whole
config but the seed and the run folder, the devices, and whatever the task bakes into its programs from
its data (normalisation constants, shapes, class counts). Only the latest key's programs are kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from jax.sharding import Mesh

from snnjax.settings import to_dict

T = TypeVar("T")
_latest: dict[Hashable, dict[str, Any]] = {}


def program_key(config: Any, mesh: Mesh, *data: Any) -> Hashable:
    """The key of the programs of a task built from ``config`` (a settings dataclass with ``loop.seed`` and
    ``loop.workdir``) on ``mesh``, with the JSON-ready values ``data`` it takes from its dataset."""
    settings = to_dict(config)
    settings["loop"] = {k: v for k, v in settings["loop"].items() if k not in ("seed", "workdir")}
    devices = tuple((d.process_index, d.id) for d in mesh.devices.flat)
    return type(config).__qualname__, json.dumps([settings, data], sort_keys=True), devices, mesh.axis_names


def shared(key: Hashable | None, name: str, build: Callable[[], T]) -> T:
    """``build()``, or what it returned before in this process for the same ``key`` and ``name`` (never
    shared when ``key`` is None). A new key drops the programs of the previous one."""
    if key is None:
        return build()
    if key not in _latest:
        _latest.clear()
        _latest[key] = {}
    programs = _latest[key]
    if name not in programs:
        programs[name] = build()
    return programs[name]


def forget() -> None:
    """Drops every shared program (the next run builds its own)."""
    _latest.clear()
