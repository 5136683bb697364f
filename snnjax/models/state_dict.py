"""PyTorch state_dicts <-> Flax variables, shared by the weight importers (``convert``, ``yolo_weights``).

An importer is one table of entries ``(PyTorch name, target, layout)`` in state_dict order, walked in both
directions by :func:`import_state_dict` and :func:`export_state_dict`. Layouts (PyTorch -> Flax):

    conv2d  (O, I, kh, kw) -> (kh, kw, I, O)      target: the Flax variable's path
    conv1d  (O, I, 1)      -> (1, 1, I, O)        a token-wise Conv1d is a 1×1 conv in NHWC
    linear  (O, I)         -> (I, O)
    vector  BN weight/bias -> scale/bias (params), running_mean/var -> mean/var (batch_stats), biases
    counter num_batches_tracked (target None): ignored on import, written as 0 on export
    fixed   a buffer the Flax model holds as a constant (target: its value): checked on import, written on
            export
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from snnjax.checks import InvalidValue

Path = tuple[str, ...]
Entry = tuple[str, Any, str]  # (PyTorch name, Flax path | None | fixed value, layout)

LAYOUTS = {  # layout -> (PyTorch to Flax, Flax to PyTorch)
    "conv2d": (lambda w: w.transpose(2, 3, 1, 0), lambda w: w.transpose(3, 2, 0, 1)),
    "conv1d": (lambda w: w.transpose(2, 1, 0)[None], lambda w: w[0].transpose(2, 1, 0)),
    "linear": (lambda w: w.T, lambda w: w.T),
    "vector": (lambda w: w, lambda w: w),
}
_BN = (
    ("weight", "params", "scale"),
    ("bias", "params", "bias"),
    ("running_mean", "batch_stats", "mean"),
    ("running_var", "batch_stats", "var"),
)
_PLAIN = "a state_dict saved by torch.save (tensors only: torch.load(weights_only=True) refused it), or an .npz"


def conv_bn_entries(conv: str, bn: str, flax_path: Path, layout: str, bias: bool = False) -> Iterator[Entry]:
    """Entries of a PyTorch conv named ``conv`` and BatchNorm named ``bn`` held by the Flax ``ConvBN`` at
    ``flax_path`` (its ``conv`` and ``bn``)."""
    yield f"{conv}.weight", ("params", *flax_path, "conv", "kernel"), layout
    if bias:
        yield f"{conv}.bias", ("params", *flax_path, "conv", "bias"), "vector"
    for torch_leaf, collection, flax_leaf in _BN:
        yield f"{bn}.{torch_leaf}", (collection, *flax_path, "bn", flax_leaf), "vector"
    yield f"{bn}.num_batches_tracked", None, "counter"


def to_numpy(value: Any) -> np.ndarray:
    """A NumPy array of ``value`` (a torch tensor, possibly half precision or on a GPU, becomes float32)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        return value.numpy()
    return np.asarray(value)


def torch_load(path: str, how_to_convert: str = "") -> Mapping:
    """``torch.load(path, weights_only=True)`` on the CPU; a pickled model is refused in one line that
    ends with ``how_to_convert``."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"{path}: reading a PyTorch checkpoint needs torch. Install torch, or convert the checkpoint "
            "to .npz where torch is available: numpy.savez(out, **{k: v.cpu().numpy() for k, v in sd.items()})"
        ) from e
    try:  # timm checkpoints also store their argparse args
        allowed = torch.serialization.safe_globals([argparse.Namespace])
    except AttributeError:  # torch < 2.5
        allowed = contextlib.nullcontext()
    try:
        with allowed:
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InvalidValue("state_dict_or_path", path, _PLAIN + how_to_convert) from None


def read_state_dict(source: Mapping | str | os.PathLike, how_to_convert: str = "") -> dict[str, np.ndarray]:
    """Name -> array from a mapping, an .npz or a torch checkpoint; unwraps "model"/"state_dict", "module.".
    A pickled model is refused with ``how_to_convert`` appended to the error."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".npz"):
            with np.load(path) as archive:
                source = dict(archive)
        else:
            source = torch_load(path, how_to_convert)
    while not any(key.endswith(".weight") for key in source):
        wrapper = next((key for key in ("model", "state_dict") if isinstance(source.get(key), Mapping)), None)
        if wrapper is None:
            raise ValueError(f"state_dict: no weights found; top-level keys: {sorted(source)}")
        source = source[wrapper]
    return {key.removeprefix("module."): to_numpy(value) for key, value in source.items()}


def torch_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """The PyTorch shape of a Flax variable of ``shape`` stored in ``layout``."""
    return LAYOUTS[layout][1](np.broadcast_to(np.float32(0), shape)).shape


def import_state_dict(
    state: Mapping[str, np.ndarray], table: Iterable[Entry], template: Mapping, accepted: str
) -> dict:
    """Nested Flax variables from ``state`` (name -> array) along ``table``, with ``template``'s dtypes.

    ``template``: the model's variables or their shapes (``jax.eval_shape`` of ``init``). Raises one
    :class:`InvalidValue` naming every missing, unexpected and mis-shaped entry (and any differing fixed
    buffer), ``accepted`` saying which model's entries are wanted.
    """
    expected = traverse_util.flatten_dict(template)
    missing, mis_shaped, differing, variables, known = [], [], [], {}, set()
    for name, target, layout in table:
        known.add(name)
        if layout == "counter":
            continue
        if name not in state:
            missing.append(name)
            continue
        want = target.shape if layout == "fixed" else torch_shape(expected[target].shape, layout)
        if state[name].shape != want:
            mis_shaped.append(f"{name}: expected {want}, got {state[name].shape}")
        elif layout == "fixed":
            if not np.allclose(state[name], target, rtol=1e-3, atol=0.0):
                differing.append(f"{name}: expected {target.tolist()}, got {state[name].tolist()}")
        else:
            variables[target] = jnp.asarray(LAYOUTS[layout][0](state[name]), dtype=expected[target].dtype)
    unexpected = sorted(set(state) - known)
    if missing or unexpected or mis_shaped or differing:
        problems = {
            f"missing ({len(missing)})": missing,
            f"unexpected ({len(unexpected)})": unexpected,
            f"mis-shaped ({len(mis_shaped)})": mis_shaped,
        }
        if differing:
            problems[f"differing ({len(differing)})"] = differing
        raise InvalidValue("state_dict", problems, accepted)
    return traverse_util.unflatten_dict(variables)


def export_state_dict(variables: Mapping, table: Iterable[Entry]) -> dict[str, np.ndarray]:
    """The PyTorch state_dict (name -> NumPy array, contiguous) of nested Flax ``variables`` along ``table``;
    counters are 0, fixed buffers their value."""
    flat = traverse_util.flatten_dict(variables)

    def tensor(target: Any, layout: str) -> np.ndarray:
        if layout == "counter":
            return np.zeros((), np.int64)
        if layout == "fixed":
            return np.array(target)
        return np.ascontiguousarray(LAYOUTS[layout][1](np.asarray(flat[target])))

    return {name: tensor(target, layout) for name, target, layout in table}
