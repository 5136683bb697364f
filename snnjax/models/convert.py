"""Weight import/export between the official PyTorch QKFormer (CIFAR) and :class:`QKFormer`.

One table, :func:`official_names`, pairs every PyTorch state_dict entry with its Flax variable and
layout (docs/qkformer.md §6; layouts in ``snnjax.models.state_dict``); both directions walk it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import check
from snnjax.models.qkformer import QKFormer
from snnjax.models.state_dict import Entry, conv_bn_entries, export_state_dict, import_state_dict, read_state_dict


def _conv_bn(torch_name: str, flax_path: tuple[str, ...], layout: str, bias: bool = False) -> Iterator[Entry]:
    """Entries of PyTorch ``{name}_conv`` + ``{name}_bn`` held by the Flax ConvBN at ``flax_path``."""
    return conv_bn_entries(f"{torch_name}_conv", f"{torch_name}_bn", flax_path, layout, bias)


def official_names(depth: int) -> Iterator[Entry]:
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


def load_official_qkformer(state_dict_or_path: Mapping | str | os.PathLike, model: QKFormer) -> dict:
    """Variables ``{"params", "batch_stats"}`` of ``model`` from an official QKFormer state_dict.

    Accepts a mapping name -> array (numpy or torch), an ``.npz`` path or a ``.pth``/``.pt`` path (needs
    torch). Set ``official_ssa_scan=True`` on ``model`` to reproduce the official outputs exactly.
    """
    _check_model(model)
    template = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    return import_state_dict(
        read_state_dict(state_dict_or_path),
        official_names(model.depth),
        template,
        f"the entries of QKFormer-{model.depth}-{model.embed_dim} ({model.num_classes} classes)",
    )


def export_official_qkformer(variables: Mapping, model: QKFormer) -> dict[str, np.ndarray]:
    """The official PyTorch state_dict (name -> numpy array) of ``variables``; num_batches_tracked = 0."""
    _check_model(model)
    return export_state_dict(variables, official_names(model.depth))
