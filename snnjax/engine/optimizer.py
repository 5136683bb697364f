"""What the loop needs of a task's optimizer, and the optax helpers every recipe shares."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class Optimizer(NamedTuple):
    """A task's optimizer: the optax transformation (called once per train step), the learning rate
    of an epoch (logged in ``metrics.jsonl``) and, when the recipe keeps an EMA of the variables, its
    decay as a function of the optimizer updates taken (``updates -> decay``, jittable)."""

    tx: optax.GradientTransformation
    learning_rate: Callable[[int], float]
    ema_decay: Callable[[jax.Array], jax.Array] | None = None


def kernel_mask(params: Any) -> Any:
    """True for the leaves that get weight decay: the ``kernel`` of every conv and dense layer.

    This is timm's rule (no decay for 1-D parameters and biases: BatchNorm scales and biases, layer
    biases, the encoder's per-channel threshold constants) and also leaves out the learnable LIF's
    ``[T, C]`` ``decay``/``weight`` (neuron constants, not weights).
    """

    def decays(path, leaf) -> bool:
        return getattr(path[-1], "key", None) == "kernel" and leaf.ndim >= 2

    return jax.tree_util.tree_map_with_path(decays, params)


def updated(opt_state: Any) -> jax.Array:
    """Whether the call that returned ``opt_state`` updated the parameters: False only between the
    accumulated batches of an ``optax.MultiSteps`` optimizer."""
    if isinstance(opt_state, optax.MultiStepsState):
        return opt_state.mini_step == 0
    return jnp.bool_(True)
