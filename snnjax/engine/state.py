"""The whole training state as one plain pytree (what the step donates and orbax saves)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class EMA:
    """Exponential moving average of the model variables (YOLOv5's ``ModelEMA``): ``updates`` optimizer
    updates averaged so far and the averaged ``variables`` (``{"params": ..., **model_state}``)."""

    updates: jax.Array
    variables: Any


@flax.struct.dataclass
class TrainState:
    """``step``: train steps (batches) taken; ``params``: trainable variables; ``model_state``: the other
    variable collections (e.g. ``batch_stats``); ``opt_state``: the optimizer's state; ``rng``: the run's
    base key (raw ``uint32[2]``), folded with the step for per-step randomness; ``ema``: an :class:`EMA`
    of the variables, or None."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array
    ema: EMA | None = None

    @property
    def variables(self) -> dict:
        """``{"params": ..., **model_state}``, as ``model.apply`` takes them."""
        return {"params": self.params, **self.model_state}

    @property
    def eval_variables(self) -> dict:
        """The variables to evaluate and export: the EMA's when kept, else :attr:`variables`."""
        return self.ema.variables if self.ema is not None else self.variables


def create_train_state(
    variables: dict, tx: optax.GradientTransformation, rng: jax.Array, ema: bool = False
) -> TrainState:
    """Splits ``variables`` into params and model state, initialises the optimizer and, with ``ema``,
    an EMA starting at ``variables``."""
    params = variables["params"]
    model_state = {k: v for k, v in variables.items() if k != "params"}
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        rng=rng,
        ema=EMA(jnp.zeros((), jnp.int32), dict(variables)) if ema else None,
    )


def update_ema(ema: EMA, variables: dict, updated: jax.Array, decay: Callable[[jax.Array], jax.Array]) -> EMA:
    """After an optimizer update (``updated``; else ``ema`` unchanged): updates += 1, d = decay(updates),
    v_ema = d·v_ema + (1 − d)·v for floating leaves; other leaves take the model's values. Jittable."""
    updates = ema.updates + updated.astype(ema.updates.dtype)
    d = decay(updates)

    def average(old, new):
        if not jnp.issubdtype(old.dtype, jnp.floating):
            return new
        return jnp.where(updated, d * old + (1.0 - d) * new, old).astype(old.dtype)

    return EMA(updates, jax.tree_util.tree_map(average, ema.variables, variables))


def saved_variables(state: dict) -> dict:
    """The evaluation variables of a train state restored without a target (nested dicts): its EMA's
    when it kept one, else ``{"params": ..., **model_state}``."""
    if state.get("ema") is not None:
        return dict(state["ema"]["variables"])
    return {"params": state["params"], **state["model_state"]}


def count_params(params) -> int:
    """Number of scalars in ``params`` (works on arrays and on ``jax.ShapeDtypeStruct`` shapes)."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
