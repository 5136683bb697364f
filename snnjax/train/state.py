"""The whole training state as one plain pytree (what the step donates and orbax saves)."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """``step``: optimizer steps taken; ``params``: trainable variables; ``model_state``: the other
    variable collections (e.g. ``batch_stats``); ``opt_state``: the optimizer's state; ``rng``: the run's
    base key (raw ``uint32[2]``), folded with the step for per-step randomness."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array

    @property
    def variables(self) -> dict:
        """``{"params": ..., **model_state}``, as ``model.apply`` takes them."""
        return {"params": self.params, **self.model_state}


def create_train_state(variables: dict, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    """Splits ``variables`` into params and model state and initialises the optimizer."""
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=model_state,
                      opt_state=tx.init(params), rng=rng)


def count_params(params) -> int:
    """Number of scalars in ``params`` (works on arrays and on ``jax.ShapeDtypeStruct`` shapes)."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
