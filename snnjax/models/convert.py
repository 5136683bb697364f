"""Weight import/export between the official PyTorch QKFormer (CIFAR) and :class:`QKFormer`.

One table, :func:`official_names`, pairs every PyTorch state_dict entry with its Flax variable and
layout (docs/qkformer.md §6); both directions walk it. Layouts (PyTorch -> Flax):

    conv2d  (O, I, kh, kw) -> (kh, kw, I, O)
    conv1d  (O, I, 1)      -> (1, 1, I, O)     the token-wise Conv1d is a 1×1 conv in NHWC
    linear  (O, I)         -> (I, O)
    vector  BN weight/bias -> scale/bias (params), running_mean/var -> mean/var (batch_stats), biases
    counter num_batches_tracked: ignored on import, written as 0 on export
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from snnjax.checks import InvalidValue, check
from snnjax.models.qkformer import QKFormer

Path = tuple[str, ...]

_LAYOUTS = {  # layout -> (PyTorch to Flax, Flax to PyTorch)
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


def _conv_bn(torch_name: str, flax_path: Path, layout: str, bias: bool = False) -> Iterator[tuple]:
    """Entries of PyTorch ``{name}_conv`` + ``{name}_bn`` held by the Flax ConvBN at ``flax_path``."""
    yield f"{torch_name}_conv.weight", ("params", *flax_path, "conv", "kernel"), layout
    if bias:
        yield f"{torch_name}_conv.bias", ("params", *flax_path, "conv", "bias"), "vector"
    for torch_leaf, collection, flax_leaf in _BN:
        yield f"{torch_name}_bn.{torch_leaf}", (collection, *flax_path, "bn", flax_leaf), "vector"
    yield f"{torch_name}_bn.num_batches_tracked", None, "counter"


def official_names(depth: int) -> Iterator[tuple[str, Path | None, str]]:
    """Yields (PyTorch name, Flax variable path, layout) for QKFormer-``depth``-D, in state_dict order.

    The official ``patch_embed1.proj_conv``/``proj_bn`` live in the temporal encoder (LC).
    """
    yield from _conv_bn("patch_embed1.proj", ("encoder",), "conv2d")
    for name in ("proj1", "proj_res"):
        yield from _conv_bn(f"patch_embed1.{name}", ("patch_embed1", name), "conv2d")
    for stage in ("patch_embed2", "patch_embed3"):
        for name in ("proj3", "proj4", "proj_res"):
            yield from _conv_bn(f"{stage}.{name}", (stage, name), "conv2d")
    blocks = [("stage1.0", "stage1_0", "tssa", "qk"), ("stage2.0", "stage2_0", "tssa", "qk")]
    blocks += [(f"stage3.{i}", f"stage3_{i}", "ssa", "qkv") for i in range(depth - 2)]
    for torch_block, flax_block, attention, projections in blocks:
        for name in projections:
            yield from _conv_bn(f"{torch_block}.{attention}.{name}", (flax_block, attention, name), "conv1d")
        yield from _conv_bn(f"{torch_block}.{attention}.proj", (flax_block, attention, "proj"), "conv1d", bias=True)
        for name in ("mlp1", "mlp2"):
            yield from _conv_bn(f"{torch_block}.mlp.{name}", (flax_block, "mlp", name), "conv2d", bias=True)
    yield "head.weight", ("params", "head", "kernel"), "linear"
    yield "head.bias", ("params", "head", "bias"), "vector"


def _check_model(model: QKFormer) -> None:
    s = model.spiking
    got = {"encoding": s.encoding, "learnable_conv": s.learnable_conv, "neuron": s.neuron, "lc_channels": s.lc_channels}
    official = {"encoding": "direct", "learnable_conv": True, "neuron": "lif", "lc_channels": None}
    check(
        got == official, "model.spiking", got, f"{official} (the only configuration official QKFormer weights map to)"
    )


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, possibly half precision or on a GPU
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        return value.numpy()
    return np.asarray(value)


def _torch_load(path: str) -> Mapping:
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
    with allowed:
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_state_dict(source: Mapping | str | os.PathLike) -> dict[str, np.ndarray]:
    """Name -> array from a mapping, an .npz or a torch checkpoint; unwraps "model"/"state_dict", "module."."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if path.endswith(".npz"):
            with np.load(path) as archive:
                source = dict(archive)
        else:
            source = _torch_load(path)
    while not any(key.endswith(".weight") for key in source):
        wrapper = next((key for key in ("model", "state_dict") if isinstance(source.get(key), Mapping)), None)
        if wrapper is None:
            raise ValueError(f"state_dict: no weights found; top-level keys: {sorted(source)}")
        source = source[wrapper]
    return {key.removeprefix("module."): _to_numpy(value) for key, value in source.items()}


def _torch_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    return _LAYOUTS[layout][1](np.broadcast_to(np.float32(0), shape)).shape


def load_official_qkformer(state_dict_or_path: Mapping | str | os.PathLike, model: QKFormer) -> dict:
    """Variables ``{"params", "batch_stats"}`` of ``model`` from an official QKFormer state_dict.

    Accepts a mapping name -> array (numpy or torch), an ``.npz`` path or a ``.pth``/``.pt`` path (needs
    torch). Set ``official_ssa_scan=True`` on ``model`` to reproduce the official outputs exactly.
    """
    _check_model(model)
    state = _read_state_dict(state_dict_or_path)
    template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    expected = traverse_util.flatten_dict(template)
    missing, mis_shaped, variables, known = [], [], {}, set()
    for name, path, layout in official_names(model.depth):
        known.add(name)
        if layout == "counter":
            continue
        if name not in state:
            missing.append(name)
            continue
        want = _torch_shape(expected[path].shape, layout)
        if state[name].shape != want:
            mis_shaped.append(f"{name}: expected {want}, got {state[name].shape}")
            continue
        variables[path] = jnp.asarray(_LAYOUTS[layout][0](state[name]), dtype=expected[path].dtype)
    unexpected = sorted(set(state) - known)
    if missing or unexpected or mis_shaped:
        raise InvalidValue(
            "state_dict",
            {
                f"missing ({len(missing)})": missing,
                f"unexpected ({len(unexpected)})": unexpected,
                f"mis-shaped ({len(mis_shaped)})": mis_shaped,
            },
            f"the entries of QKFormer-{model.depth}-{model.embed_dim} ({model.num_classes} classes)",
        )
    return traverse_util.unflatten_dict(variables)


def export_official_qkformer(variables: Mapping, model: QKFormer) -> dict[str, np.ndarray]:
    """The official PyTorch state_dict (name -> numpy array) of ``variables``; num_batches_tracked = 0."""
    _check_model(model)
    flat = traverse_util.flatten_dict(variables)
    return {
        name: np.zeros((), np.int64)
        if layout == "counter"
        else np.ascontiguousarray(_LAYOUTS[layout][1](np.asarray(flat[path])))
        for name, path, layout in official_names(model.depth)
    }
