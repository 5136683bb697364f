"""Spike statistics: per-layer firing rates and the time-shuffling test (paper, Appendix B)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from snnjax.checks import check
from snnjax.neurons import LIF, LearnableLIF


def sown_values(collection: Any, prefix: tuple[str, ...] = ()) -> list[tuple[list[str], tuple]]:
    """Every sown entry of a Flax collection in the order the modules were called: (its path as names,
    e.g. ``["stage1_0", "q_lif", "rate"]``, the tuple of values sown there, one per call)."""
    if not isinstance(collection, Mapping):
        return [(list(prefix), collection if isinstance(collection, tuple) else (collection,))]
    return [found for key, value in collection.items() for found in sown_values(value, (*prefix, str(key)))]


def firing_rates(collection: Any, weights: jax.Array | None = None) -> dict[str, jax.Array]:
    """Mean firing rate per spiking layer from a sown ``firing_rates`` collection.

    Layers are named by their module path (``"stage1_0/tssa/q_lif"``); a module called several times
    (several sown values) gets the mean of its calls. Each sown value holds one rate per example
    (``[B]``, :func:`snnjax.neurons.record_firing_rate`); ``weights [B]`` (e.g. 1 for the real examples
    of a padded batch and 0 for the padding) weights them, else every example counts once. Jittable.
    """
    rates = {}
    for names, sown in sown_values(collection):
        if names and names[-1] == "rate":
            names = names[:-1]
        values = jnp.stack([jnp.asarray(v, jnp.float32) for v in sown])
        name = "/".join(names)
        if weights is None:
            rates[name] = jnp.mean(values)
        else:
            w = jnp.asarray(weights, jnp.float32)
            check(
                values.shape[1:] == w.shape,
                f"firing_rates[{name!r}]",
                values.shape[1:],
                f"one rate per example {w.shape}",
            )
            rates[name] = jnp.sum(values * w) / (values.shape[0] * jnp.sum(w))
    return rates


def shuffle_time(spikes: jax.Array, key: jax.Array) -> jax.Array:
    """Permutes every neuron's spike train over time (axis 0), independently per neuron.

    Each neuron keeps its spike count and loses its spike timing: ``spikes [T, ...]`` -> ``[T, ...]``.
    """
    order = jnp.argsort(jax.random.uniform(key, spikes.shape), axis=0)
    return jnp.take_along_axis(spikes, order, axis=0)


def shuffle_time_interceptor(
    key: jax.Array, T: int | None = None, neurons: tuple[type, ...] = (LIF, LearnableLIF)
) -> Callable:
    """A Flax method interceptor applying :func:`shuffle_time` to the output of every neuron module.

    Use as ``with nn.intercept_methods(shuffle_time_interceptor(key)): model.apply(...)``; the model
    needs no flag. Each intercepted call gets its own key (folded with the call's order). When ``T`` is
    given, an output whose leading axis is ``T·B`` rather than ``T`` (a neuron scanned over the merged
    time-batch axis, as QKFormer's official SSA projection) is shuffled over its ``T`` steps only.
    """
    calls = itertools.count()

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name != "__call__" or not isinstance(context.module, neurons):
            return out
        sub = jax.random.fold_in(key, next(calls))
        if T is None or out.shape[0] == T:
            return shuffle_time(out, sub)
        merged = out.reshape((T, out.shape[0] // T) + out.shape[1:])
        return shuffle_time(merged, sub).reshape(out.shape)

    return interceptor
