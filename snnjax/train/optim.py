"""The optimizers, from their configs: AdamW with timm's per-epoch cosine schedule and QKFormer's
weight-decay exclusions (qkformer spec §2), and YOLOv5's SGD recipe (yolov5n spec §3.5).

YOLOv5's SGD is composed of optax parts: ``MultiSteps`` sums the gradients of the accumulated batches;
the inner optimizer clips them, adds the weight decay of conv kernels and applies Nesterov SGD with
two parameter groups (biases, others) whose learning rates and momentum are injected per update.
Its schedules are written in YOLOv5's batch count ``ni`` (:func:`sgd_hyperparams`); update ``s`` happens
at batch :func:`update_iterations` ``[s]``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from snnjax.train.config import OptimConfig, SGDConfig


def epoch_learning_rate(epoch, config: OptimConfig | SGDConfig, epochs: int):
    """Learning rate of ``epoch`` (0-based) after any warm-up.

    SGD: ``lr·lf(epoch)`` (:func:`linear_decay`). AdamW: timm 0.6 ``CosineLRScheduler`` with ``t_in_epochs``.

    With t_initial = epochs − cooldown_epochs:
      e < warmup:            warmup_lr + e·(lr − warmup_lr)/warmup_epochs
      warmup ≤ e < t_initial: min_lr + ½(lr − min_lr)(1 + cos(π·e/t_initial))   (counted from epoch 0)
      e ≥ t_initial:          min_lr   (cooldown)
    Works on Python numbers and on traced integer arrays.
    """
    if isinstance(config, SGDConfig):
        return config.lr * linear_decay(epoch, config.lrf, epochs)
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
        raise ValueError(
            f"warmup_epochs: must be in [0, epochs - cooldown_epochs = "
            f"{epochs - config.cooldown_epochs}], got {config.warmup_epochs}"
        )
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


def make_optimizer(
    config: OptimConfig | SGDConfig, epochs: int, steps_per_epoch: int, batch_size: int | None = None
) -> optax.GradientTransformation:
    """The optimizer ``config`` describes; ``steps_per_epoch`` counts batches (train steps).

    OptimConfig: optional global-norm clipping, then AdamW (decoupled decay, masked by ``weight_decay_mask``).
    SGDConfig: :func:`yolo_sgd` (needs ``batch_size``, the global batch).
    """
    if isinstance(config, SGDConfig):
        return yolo_sgd(config, epochs, steps_per_epoch, batch_size)
    adamw = optax.adamw(
        make_schedule(config, epochs, steps_per_epoch),
        b1=config.b1,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
        mask=weight_decay_mask,
    )
    if config.clip_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)


def linear_decay(epoch, lrf: float, epochs: int):
    """YOLOv5's lf(e) = (1 − e/E)(1 − lrf) + lrf: 1 at epoch 0, lrf at epoch E."""
    return (1.0 - jnp.asarray(epoch, jnp.float32) / epochs) * (1.0 - lrf) + lrf


def warmup_steps(config: SGDConfig, steps_per_epoch: int) -> int:
    """nw = max(round(warmup_epochs · batches per epoch), min_warmup_steps)."""
    return max(round(config.warmup_epochs * steps_per_epoch), config.min_warmup_steps)


def accumulation(config: SGDConfig, batch_size: int) -> int:
    """Batches summed per update after the warm-up: max(round(nominal_batch_size / batch_size), 1)."""
    return max(round(config.nominal_batch_size / batch_size), 1)


def sgd_hyperparams(iteration, config: SGDConfig, epochs: int, steps_per_epoch: int) -> dict:
    """``lr``, ``bias_lr`` and ``momentum`` of an update made at batch ``iteration`` (YOLOv5's ni).

    With e = ni // batches per epoch and nw = :func:`warmup_steps`, for ni < nw (np.interp over [0, nw]):
      bias_lr = warmup_bias_lr → lr·lf(e),  lr = 0 → lr·lf(e),  momentum = warmup_momentum → momentum;
    afterwards lr = bias_lr = lr·lf(e) and momentum = ``momentum``. Jittable.
    """
    ni = jnp.asarray(iteration, jnp.float32)
    nw = warmup_steps(config, steps_per_epoch)
    target = epoch_learning_rate(jnp.asarray(iteration) // steps_per_epoch, config, epochs)
    fraction = ni / max(nw, 1)

    def warm(start, end):
        return jnp.where(ni < nw, start + (end - start) * fraction, end)

    return {
        "lr": warm(0.0, target),
        "bias_lr": warm(config.warmup_bias_lr, target),
        "momentum": warm(config.warmup_momentum, config.momentum),
    }


def update_iterations(config: SGDConfig, steps_per_epoch: int, batch_size: int) -> Callable:
    """``s -> ni``: the batch at which YOLOv5 makes its update ``s`` (0-based; jittable).

    YOLOv5 updates at batch ni when ni − (batch of the last update, −1 at first) ≥ accumulate(ni), with
    accumulate(ni) = max(1, round(np.interp(ni, [0, nw], [1, nominal/batch]))) during the warm-up and
    :func:`accumulation` after it. The warm-up's updates are listed on the host; later ones are periodic.
    """
    nw = warmup_steps(config, steps_per_epoch)
    final = accumulation(config, batch_size)
    ramp = np.maximum(1, np.round(np.interp(np.arange(nw), [0, nw], [1, config.nominal_batch_size / batch_size])))
    table, last = [], -1
    for ni, accumulate in enumerate(ramp):
        if ni - last >= accumulate:
            table.append(ni)
            last = ni
    warmup = jnp.asarray(table or [0], jnp.int32)

    def iteration(s):
        s = jnp.asarray(s, jnp.int32)
        periodic = last + (s - len(table) + 1) * final
        return jnp.where(s < len(table), warmup[jnp.clip(s, 0, len(warmup) - 1)], periodic)

    return iteration


def param_groups(params):
    """YOLOv5's parameter groups: ``"bias"`` for every ``bias`` leaf (BN β, Detect biases; their lr warms
    up from ``warmup_bias_lr``), ``"other"`` for the rest (kernels, BN scales, neuron and encoder constants)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "bias" if getattr(path[-1], "key", None) == "bias" else "other", params
    )


def yolo_sgd(config: SGDConfig, epochs: int, steps_per_epoch: int, batch_size: int) -> optax.GradientTransformation:
    """YOLOv5's optimizer step as one transformation, called once per batch (see the module docstring).

    Per update s at batch ni = update_iterations(s): g = Σ grads of the batches since the last update;
    g = clip(g, clip_norm); g += wd'·p on conv kernels (wd' = weight_decay·batch·accumulate/nominal);
    torch Nesterov SGD with momentum(ni) and lr(ni) (bias_lr(ni) for biases). Other batches return zero
    updates. :func:`updated` tells whether the last call updated.
    """
    if batch_size is None or batch_size < 1:
        raise ValueError(f"batch_size: the SGD recipe needs the global batch size, got {batch_size}")
    validate_sgd(config, epochs)
    iteration = update_iterations(config, steps_per_epoch, batch_size)
    decay = config.weight_decay * batch_size * accumulation(config, batch_size) / config.nominal_batch_size

    def hyper(name):
        return lambda s: sgd_hyperparams(iteration(s), config, epochs, steps_per_epoch)[name]

    def group(lr_name):
        return optax.inject_hyperparams(optax.sgd, static_args="nesterov")(
            learning_rate=hyper(lr_name), momentum=hyper("momentum"), nesterov=True
        )

    inner = optax.chain(
        optax.clip_by_global_norm(config.clip_norm) if config.clip_norm is not None else optax.identity(),
        optax.add_decayed_weights(decay, mask=weight_decay_mask),
        optax.multi_transform({"bias": group("bias_lr"), "other": group("lr")}, param_groups),
    )

    def batches_per_update(s):
        return iteration(s) - jnp.where(s > 0, iteration(s - 1), -1)

    return optax.MultiSteps(inner, batches_per_update, use_grad_mean=False).gradient_transformation()


def validate_sgd(config: SGDConfig, epochs: int) -> None:
    """Raises ValueError, naming the field, for an SGD recipe that cannot run."""
    if epochs < 1:
        raise ValueError(f"epochs: must be >= 1, got {epochs}")
    checks = {
        "lr": (config.lr > 0, "> 0"),
        "nominal_batch_size": (config.nominal_batch_size >= 1, ">= 1"),
        "lrf": (0 <= config.lrf <= 1, "in [0, 1]"),
        "momentum": (0 <= config.momentum < 1, "in [0, 1)"),
        "warmup_momentum": (0 <= config.warmup_momentum < 1, "in [0, 1)"),
        "weight_decay": (config.weight_decay >= 0, ">= 0"),
        "warmup_epochs": (config.warmup_epochs >= 0, ">= 0"),
        "warmup_bias_lr": (config.warmup_bias_lr >= 0, ">= 0"),
        "min_warmup_steps": (config.min_warmup_steps >= 0, ">= 0"),
        "clip_norm": (config.clip_norm is None or config.clip_norm > 0, "> 0 (or unset)"),
        "ema_decay": (config.ema_decay is None or 0 < config.ema_decay < 1, "in (0, 1) (or unset)"),
        "ema_tau": (config.ema_tau > 0, "> 0"),
    }
    for name, (ok, accepted) in checks.items():
        if not ok:
            raise ValueError(f"{name}: must be {accepted}, got {getattr(config, name)}")


def updated(opt_state) -> jax.Array:
    """Whether the call that returned ``opt_state`` updated the parameters: False only between the
    accumulated batches of a ``MultiSteps`` optimizer."""
    if isinstance(opt_state, optax.MultiStepsState):
        return opt_state.mini_step == 0
    return jnp.bool_(True)


def ema_decay_schedule(config: OptimConfig | SGDConfig) -> Callable | None:
    """``updates -> decay`` of the weights' EMA (YOLOv5's ModelEMA: decay·(1 − exp(−updates/tau))), or None
    when the recipe keeps no EMA."""
    if not isinstance(config, SGDConfig) or config.ema_decay is None:
        return None
    return lambda updates: -config.ema_decay * jnp.expm1(-jnp.asarray(updates, jnp.float32) / config.ema_tau)
