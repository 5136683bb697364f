"""Operations and energy of a network's conv and dense layers, as SNN papers estimate them.

A layer whose input holds non-negative integers (spikes, or SEW sums of spikes) only accumulates: each
input spike costs one accumulate (AC) per outgoing connection, so a layer's ACs are its MACs times its mean
input, which is the literature's "firing rate × fan-out MACs × T" with time folded into the count. Any
other input (the image, an average over time, an ANN's activations) costs the layer's MACs. Energy per
example is ``E_MAC·MACs + E_AC·ACs`` with the 45 nm figures used in the SNN literature (Horowitz, ISSCC
2014): ``E_MAC = 4.6 pJ``, ``E_AC = 0.9 pJ``. Pools, BatchNorm (folded into the conv at inference) and the
element-wise attention masks are not counted.

Use :func:`operations_interceptor` around ``model.apply(..., mutable=[COLLECTION])``, reduce the sown
values with :func:`operation_sums` (jittable, padding-aware) and turn the totals into per-layer figures
with :func:`energy`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import check
from snnjax.metrics.spikes import sown_values

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
COLLECTION = "operations"


def operations_interceptor(batch: int, layers: tuple[type, ...] = (nn.Conv, nn.Dense)) -> Callable:
    """A Flax method interceptor that sows, for every call of a ``layers`` module on a batch of ``batch``
    examples, its MACs per example (outputs per example × kernel fan-in), each example's mean input
    ``[batch]`` and whether the input held only non-negative integers. Inputs are ``[batch, ...]`` or
    time-folded ``[T·batch, ...]`` (time-major)."""

    def interceptor(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        module = context.module
        if context.method_name != "__call__" or not isinstance(module, layers):
            return out
        x = args[0]
        check(
            x.shape[0] % batch == 0,
            f"{type(module).__name__} input",
            x.shape,
            f"a leading axis of {batch} examples or a multiple (time folded into the batch)",
        )
        kernel = module.get_variable("params", "kernel")
        macs = out.size // batch * math.prod(kernel.shape[:-1])
        examples = x.reshape((x.shape[0] // batch, batch, -1)).astype(jnp.float32)
        integer = jnp.all((examples == jnp.round(examples)) & (examples >= 0))
        module.sow(COLLECTION, "macs", jnp.float32(macs))
        module.sow(COLLECTION, "input", jnp.mean(examples, axis=(0, 2)))
        module.sow(COLLECTION, "integer", integer)
        return out

    return interceptor


def _layers(collection: Any) -> dict[str, dict[str, tuple]]:
    """Layer path -> {"macs", "input", "integer"} tuples of sown values (one per call)."""
    found: dict[str, dict[str, tuple]] = {}
    for names, values in sown_values(collection):
        found.setdefault("/".join(names[:-1]), {})[names[-1]] = values
    return found


def operation_sums(collection: Any, weights: jax.Array) -> dict[str, dict[str, jax.Array]]:
    """Per layer, sums over the examples weighted by ``weights [B]`` (0 for padding rows): ``macs`` (MACs
    per example × Σw), ``input_ops`` (MACs × mean input, × w), ``weight`` (Σw), and ``non_integer`` (1 when
    some call's input was not spikes). A layer called several times adds its calls. Jittable; the sums of
    several batches add up, and :func:`energy` turns the total into figures per example."""
    w = jnp.asarray(weights, jnp.float32)
    sums = {}
    for name, values in _layers(collection).items():
        macs = sum(jnp.asarray(m, jnp.float32) for m in values["macs"])
        input_ops = sum(jnp.asarray(m, jnp.float32) * jnp.sum(r * w) for m, r in zip(values["macs"], values["input"]))
        integer = jnp.all(jnp.stack([jnp.asarray(i) for i in values["integer"]]))
        sums[name] = {
            "macs": macs * jnp.sum(w),
            "input_ops": input_ops,
            "weight": jnp.sum(w),
            "non_integer": 1.0 - integer.astype(jnp.float32),
        }
    return sums


def summary(sums: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The metrics a task reports from :func:`operation_sums` totals: ``energy_mj``, ``mac_ops``,
    ``ac_ops`` (per example) and ``operations_per_layer`` (:func:`energy`'s ``layers``)."""
    figures = energy(sums)
    return {
        "energy_mj": figures["energy_mj"],
        "mac_ops": figures["mac_ops"],
        "ac_ops": figures["ac_ops"],
        "operations_per_layer": figures["layers"],
    }


def energy(sums: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Figures per example from :func:`operation_sums` totals: per layer its ``macs``, the ``ops`` it
    performs and whether they are accumulates (``spiking``); the model's ``mac_ops``, ``ac_ops`` and
    ``energy_mj`` (E_MAC·MACs + E_AC·ACs)."""
    layers, mac_ops, ac_ops = {}, 0.0, 0.0
    for name, s in sums.items():
        weight = float(s["weight"])
        if weight == 0:
            continue
        spiking = float(s["non_integer"]) == 0
        macs = float(s["macs"]) / weight
        ops = float(s["input_ops"]) / weight if spiking else macs
        layers[name] = {"macs": macs, "ops": ops, "spiking": spiking}
        ac_ops, mac_ops = (ac_ops + ops, mac_ops) if spiking else (ac_ops, mac_ops + ops)
    return {
        "layers": layers,
        "mac_ops": mac_ops,
        "ac_ops": ac_ops,
        "energy_mj": (E_MAC_PJ * mac_ops + E_AC_PJ * ac_ops) * 1e-9,
    }
