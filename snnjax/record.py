"""Recording what a spiking network does on an input, without changing the model: every spiking layer's
spike trains ``[T, B, ...]`` by module path, and, where asked, every neuron's membrane potential.

The neurons and encoders of snnjax sow their output into the ``spikes`` collection, and their post-reset
membrane potential V into ``membrane``, only when the caller makes that collection mutable, so an
ordinary ``apply`` (training, evaluation) records nothing and costs nothing. SpikingJelly's
``Monitor`` and snnTorch's ``spikeplot`` serve the same purpose; :mod:`snnjax.plots` draws the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax

from snnjax.metrics.spikes import sown_values


class Recording(NamedTuple):
    """``output``: the model's usual output. ``spikes``: layer path -> spike trains ``[T, B, ...]`` (the
    model's dtype, values 0/1) in the order the layers ran (``jax.jit`` returns dicts sorted by key); a
    direct encoder's analog input is not recorded, the LIF after it is. ``membrane``: neuron path -> its
    post-reset potential V ``[T, B, ...]`` (empty unless asked)"""

    output: Any
    spikes: dict[str, jax.Array]
    membrane: dict[str, jax.Array]


def _by_layer(collection: Mapping, leaf: str) -> dict[str, jax.Array]:
    """Layer path ("stage1_0/tssa/q_lif") -> sown array; a layer called n > 1 times gives "path[i]"."""
    found = {}
    for names, values in sown_values(collection):
        path = "/".join(names[:-1] if names and names[-1] == leaf else names)
        for i, value in enumerate(values):
            found[path if len(values) == 1 else f"{path}[{i}]"] = value
    return found


def record_spikes(
    model: nn.Module, variables: Mapping, x: Any, *args: Any, membrane: bool = False, **kwargs: Any
) -> Recording:
    """Runs ``model.apply(variables, x, *args, **kwargs)`` and returns its output with every spiking
    layer's spikes (and, with ``membrane``, every neuron's V) by module path.

    ``kwargs`` go to ``apply`` as they are (e.g. ``train=False``, ``rngs={"encoding": key}`` for a
    Poisson encoder). Jittable with ``model`` and ``membrane`` static, e.g.
    ``jax.jit(record_spikes, static_argnums=0, static_argnames="membrane")``.
    """
    collections = ["spikes", "membrane"] if membrane else ["spikes"]
    output, state = model.apply(variables, x, *args, mutable=collections, **kwargs)
    return Recording(output, _by_layer(state.get("spikes", {}), "spikes"), _by_layer(state.get("membrane", {}), "v"))
