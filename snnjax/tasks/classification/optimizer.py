"""AdamW with timm's per-epoch cosine schedule and the weight-decay exclusions of the official QKFormer
recipe (docs/qkformer.md §2)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import optax

from snnjax.checks import check, integer, is_int, number, optional
from snnjax.engine.optimizer import Optimizer, kernel_mask
from snnjax.settings import Settings, setting


@dataclasses.dataclass(frozen=True)
class OptimConfig(Settings):
    """AdamW with a per-epoch cosine schedule and linear warm-up (timm ``CosineLRScheduler``).

    The cosine runs over ``epochs - cooldown_epochs`` epochs from ``lr`` to ``min_lr``; the last
    ``cooldown_epochs`` stay at ``min_lr``; the first ``warmup_epochs`` ramp from ``warmup_lr``.
    """

    lr: float = setting(1e-3, "peak learning rate", accepts=number(0, low_open=True))
    min_lr: float = setting(1e-5, "final learning rate of the cosine", accepts=number(0))
    warmup_epochs: int = setting(20, "linear warm-up epochs", accepts=integer(0))
    warmup_lr: float = setting(1e-5, "learning rate of the first warm-up epoch", accepts=number(0))
    cooldown_epochs: int = setting(10, "final epochs at --min_lr", accepts=integer(0))
    weight_decay: float = setting(0.06, "AdamW decay of conv and dense kernels", accepts=number(0))
    b1: float = setting(0.9, "Adam β1", accepts=number(0, 1, high_open=True))
    b2: float = setting(0.999, "Adam β2", accepts=number(0, 1, high_open=True))
    eps: float = setting(1e-8, "Adam ε", accepts=number(0, low_open=True))
    clip_norm: float | None = setting(
        None, "clip the global gradient norm", accepts=optional(number(0, low_open=True), "no clipping")
    )

    def check_epochs(self, epochs: int) -> None:
        """Raises InvalidValue naming the field when the schedule does not fit in ``epochs``."""
        cooldown = self.cooldown_epochs
        check(is_int(epochs) and epochs > cooldown, "epochs", epochs, f"an int > cooldown_epochs = {cooldown}")
        accepted = f"an int in [0, epochs - cooldown_epochs = {epochs - cooldown}]"
        check(self.warmup_epochs <= epochs - cooldown, "warmup_epochs", self.warmup_epochs, accepted)


def epoch_learning_rate(epoch, config: OptimConfig, epochs: int):
    """Learning rate of ``epoch`` (0-based): timm 0.6 ``CosineLRScheduler`` with ``t_in_epochs``.

    With t_initial = epochs − cooldown_epochs:
      e < warmup:            warmup_lr + e·(lr − warmup_lr)/warmup_epochs
      warmup ≤ e < t_initial: min_lr + ½(lr − min_lr)(1 + cos(π·e/t_initial))   (counted from epoch 0)
      e ≥ t_initial:          min_lr   (cooldown)
    Works on Python numbers and on traced integer arrays.
    """
    t_initial = epochs - config.cooldown_epochs
    e = jnp.asarray(epoch, jnp.float32)
    cosine = config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + jnp.cos(jnp.pi * e / t_initial))
    lr = jnp.where(e >= t_initial, config.min_lr, cosine)
    if config.warmup_epochs > 0:
        warmup = config.warmup_lr + e * (config.lr - config.warmup_lr) / config.warmup_epochs
        lr = jnp.where(e < config.warmup_epochs, warmup, lr)
    return lr


def make_schedule(config: OptimConfig, epochs: int, steps_per_epoch: int) -> optax.Schedule:
    """Per-step schedule holding the epoch's learning rate constant within the epoch."""
    config.check_epochs(epochs)
    return lambda count: epoch_learning_rate(count // steps_per_epoch, config, epochs)


def make_optimizer(config: OptimConfig, epochs: int, steps_per_epoch: int) -> Optimizer:
    """Optional global-norm clipping, then AdamW (decoupled decay on conv and dense kernels only)."""
    adamw = optax.adamw(
        make_schedule(config, epochs, steps_per_epoch),
        b1=config.b1,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=kernel_mask,
    )
    tx = adamw if config.clip_norm is None else optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)
    return Optimizer(tx, lambda epoch: float(epoch_learning_rate(epoch, config, epochs)))
