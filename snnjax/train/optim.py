"""AdamW with timm's per-epoch cosine schedule and QKFormer's weight-decay exclusions (spec §2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from snnjax.train.config import OptimConfig


def epoch_learning_rate(epoch, config: OptimConfig, epochs: int):
    """Learning rate of ``epoch`` (0-based), as timm 0.6 ``CosineLRScheduler`` with ``t_in_epochs``.

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
    validate(config, epochs)
    return lambda count: epoch_learning_rate(count // steps_per_epoch, config, epochs)


def validate(config: OptimConfig, epochs: int) -> None:
    """Raises ValueError, naming the field, for a schedule that cannot run."""
    if epochs < 1:
        raise ValueError(f"epochs: must be >= 1, got {epochs}")
    if not 0 <= config.cooldown_epochs < epochs:
        raise ValueError(f"cooldown_epochs: must be in [0, epochs={epochs}), got {config.cooldown_epochs}")
    if not 0 <= config.warmup_epochs <= epochs - config.cooldown_epochs:
        raise ValueError(f"warmup_epochs: must be in [0, epochs - cooldown_epochs = "
                         f"{epochs - config.cooldown_epochs}], got {config.warmup_epochs}")
    if config.clip_norm is not None and config.clip_norm <= 0:
        raise ValueError(f"clip_norm: must be > 0 (or unset), got {config.clip_norm}")


def weight_decay_mask(params):
    """True for the leaves that get weight decay: the ``kernel`` of every conv and dense layer.

    This is timm's rule (no decay for 1-D parameters and biases: BN scale/bias, conv/linear biases,
    the encoder's per-channel ``threshold``/``threshold_decay_logit``) plus one exclusion of ours:
    the learnable LIF's ``decay``/``weight`` (``[T, C]``, per-channel neuron constants, not weights).
    """
    def decays(path, leaf) -> bool:
        return getattr(path[-1], "key", None) == "kernel" and leaf.ndim >= 2

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(config: OptimConfig, epochs: int, steps_per_epoch: int) -> optax.GradientTransformation:
    """Optional global-norm clipping, then AdamW (decoupled decay, masked by ``weight_decay_mask``)."""
    adamw = optax.adamw(
        make_schedule(config, epochs, steps_per_epoch), b1=config.b1, b2=config.b2, eps=config.eps,
        weight_decay=config.weight_decay, mask=weight_decay_mask,
    )
    if config.clip_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)
