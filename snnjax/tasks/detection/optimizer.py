"""YOLOv5 v7.0's optimizer as train.py and hyp.scratch-low set it up (docs/yolov5n.md §3.5).

SGD with Nesterov momentum, composed of optax parts: ``MultiSteps`` sums the gradients of the
accumulated batches; the inner optimizer clips them, adds the weight decay of conv kernels and applies
Nesterov SGD with two parameter groups (biases, others) whose learning rates and momentum are injected
per update. Its schedules are written in YOLOv5's batch count ``ni`` (:func:`sgd_hyperparams`); update
``s`` happens at batch :func:`update_iterations` ``[s]``. An EMA of the weights (YOLOv5's ``ModelEMA``)
is what evaluation and checkpoints use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from snnjax.checks import check, integer, is_int, number, optional
from snnjax.engine.optimizer import Optimizer, kernel_mask
from snnjax.settings import Settings, setting


@dataclasses.dataclass(frozen=True)
class SGDConfig(Settings):
    """SGD with Nesterov momentum as YOLOv5 v7.0 trains (hyp.scratch-low + train.py).

    The learning rate decays per epoch as ``lr·lf(e)``, lf(e) = (1 − e/E)(1 − lrf) + lrf. A warm-up runs
    over nw = max(round(warmup_epochs·batches per epoch), min_warmup_steps) batches, interpolating linearly
    in the batch count: biases' lr from ``warmup_bias_lr`` and the other parameters' from 0 to lr·lf(e),
    momentum from ``warmup_momentum`` to ``momentum``, and the accumulation from 1 to
    nominal_batch_size/batch_size batches (max(round(·), 1) after it). ``weight_decay`` (conv kernels
    only) is rescaled by batch·accumulate/nominal_batch_size; gradients are summed over the accumulated
    batches and clipped to ``clip_norm``. ``ema_decay``: evaluate and keep an EMA of all floating
    variables with decay ema_decay·(1 − exp(−updates/ema_tau)).
    """

    lr: float = setting(0.01, "initial learning rate (YOLOv5's lr0)", accepts=number(0, low_open=True))
    lrf: float = setting(0.01, "final learning rate as a fraction of --lr (linear decay)", accepts=number(0, 1))
    momentum: float = setting(0.937, "SGD Nesterov momentum", accepts=number(0, 1, high_open=True))
    weight_decay: float = setting(5e-4, "decay of conv kernels, at the nominal batch size", accepts=number(0))
    warmup_epochs: float = setting(3.0, "warm-up length in epochs", accepts=number(0))
    warmup_momentum: float = setting(0.8, "momentum at the start of the warm-up", accepts=number(0, 1, high_open=True))
    warmup_bias_lr: float = setting(0.1, "biases' learning rate at the start of the warm-up", accepts=number(0))
    min_warmup_steps: int = setting(100, "warm-up length at least, in batches", accepts=integer(0))
    nominal_batch_size: int = setting(64, "accumulate gradients to about this batch size", accepts=integer(1))
    clip_norm: float | None = setting(
        10.0, "clip the global gradient norm", accepts=optional(number(0, low_open=True), "no clipping")
    )
    ema_decay: float | None = setting(
        0.9999,
        "evaluate and save an EMA of the weights, decay ema_decay·(1 − exp(−updates/ema_tau))",
        accepts=optional(number(0, 1, low_open=True, high_open=True), "no EMA"),
    )
    ema_tau: float = setting(2000.0, "EMA warm-up constant, in optimizer updates", accepts=number(0, low_open=True))


def linear_decay(epoch, lrf: float, epochs: int):
    """YOLOv5's lf(e) = (1 − e/E)(1 − lrf) + lrf: 1 at epoch 0, lrf at epoch E."""
    return (1.0 - jnp.asarray(epoch, jnp.float32) / epochs) * (1.0 - lrf) + lrf


def epoch_learning_rate(epoch, config: SGDConfig, epochs: int):
    """``lr·lf(epoch)``: the learning rate of ``epoch`` (0-based) after the warm-up."""
    return config.lr * linear_decay(epoch, config.lrf, epochs)


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
    check(is_int(batch_size) and batch_size >= 1, "batch_size", batch_size, "the global batch size, an int >= 1")
    check(is_int(epochs) and epochs >= 1, "epochs", epochs, "an int >= 1")
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
        optax.add_decayed_weights(decay, mask=kernel_mask),
        optax.multi_transform({"bias": group("bias_lr"), "other": group("lr")}, param_groups),
    )

    def batches_per_update(s):
        return iteration(s) - jnp.where(s > 0, iteration(s - 1), -1)

    return optax.MultiSteps(inner, batches_per_update, use_grad_mean=False).gradient_transformation()


def ema_decay_schedule(config: SGDConfig) -> Callable | None:
    """``updates -> decay`` of the weights' EMA (YOLOv5's ModelEMA: decay·(1 − exp(−updates/tau))), or None
    when the recipe keeps no EMA."""
    if config.ema_decay is None:
        return None
    return lambda updates: -config.ema_decay * jnp.expm1(-jnp.asarray(updates, jnp.float32) / config.ema_tau)


def make_optimizer(config: SGDConfig, epochs: int, steps_per_epoch: int, batch_size: int) -> Optimizer:
    """:func:`yolo_sgd`, its per-epoch learning rate ``lr·lf(e)`` and its EMA decay (None without EMA)."""
    return Optimizer(
        yolo_sgd(config, epochs, steps_per_epoch, batch_size),
        lambda epoch: float(epoch_learning_rate(epoch, config, epochs)),
        ema_decay_schedule(config),
    )
