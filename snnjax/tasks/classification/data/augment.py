"""On-device training augmentation: pure, jittable, vmappable JAX on uint8 ``[B, H, W, C]`` batches.

Policies (``augment_batch(policy=...)``):

- ``"official"``: QKFormer's timm recipe (docs/qkformer.md §2), in timm's order: horizontal flip
  (p 0.5) -> RandAugment ``rand-m9-n1-mstd0.4-inc1`` (fill = mean colour) -> batch mixup
  (``λ ~ Beta(α, α)``, each image mixed with the reversed batch, rounded to integers like timm's
  uint8 collate) -> normalise -> random erasing (zeros in normalised space).
- ``"crop_flip"``: zero-pad 4, random crop back to ``H × W``, horizontal flip; no mixup, no erasing.
- ``"none"``: normalise only.

Targets are always soft: ``(1 − s)·onehot + s/K`` (label smoothing ``s``), mixed with mixup's ``λ``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import one_of
from snnjax.tasks.classification.data.randaugment import rand_augment

POLICIES = ("official", "crop_flip", "none")


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """``(x / 255 − mean) / std`` per channel, float32; ``x`` uint8 (or float in [0, 255])."""
    x = jnp.asarray(images).astype(jnp.float32) / 255.0
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)


def smooth_targets(labels: jax.Array, num_classes: int, smoothing: float) -> jax.Array:
    """``[B, K]`` soft targets: ``1 − s + s/K`` on the label, ``s/K`` elsewhere."""
    return jax.nn.one_hot(labels, num_classes) * (1.0 - smoothing) + smoothing / num_classes


def random_flip(rng: jax.Array, images: jax.Array) -> jax.Array:
    """Mirror each image left-right with probability 0.5."""
    flip = jax.random.bernoulli(rng, 0.5, (images.shape[0],))
    return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def random_crop(rng: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """Zero-pad ``pad`` pixels on each side, then crop a random ``H × W`` window per image."""
    batch, h, w, c = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(rng, (batch, 2), 0, 2 * pad + 1)

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

    return jax.vmap(crop)(padded, offsets)


def mixup(rng: jax.Array, images: jax.Array, targets: jax.Array, alpha: float) -> tuple[jax.Array, jax.Array]:
    """Batch mixup: ``λ ~ Beta(α, α)``; ``x ← λ x + (1 − λ) x[::-1]``, same for the targets.

    Runs under ``lax.cond(λ < 1)``: exact (λ = 1 is the identity), and the branch boundary makes
    XLA materialise ``images`` instead of fusing their producer (RandAugment) into the pairing,
    which would compute it twice (3x slower on CPU).
    """
    lam = jax.random.beta(rng, alpha, alpha)

    def mix(x: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array]:
        return lam * x + (1.0 - lam) * x[::-1], lam * t + (1.0 - lam) * t[::-1]

    return jax.lax.cond(lam < 1.0, mix, lambda x, t: (x, t), images, targets)


def random_erase(
    rng: jax.Array,
    images: jax.Array,
    prob: float,
    *,
    area: tuple[float, float] = (0.02, 1 / 3),
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
    attempts: int = 10,
) -> jax.Array:
    """timm ``RandomErasing(mode="const", max_count=1)``: per image with probability ``prob``,
    zero one box of ``area`` fraction and log-uniform ``aspect`` (h/w); the first of ``attempts``
    draws that fits the image is used (none fits: no erasing)."""
    batch, h, w, _ = images.shape
    # One uniform draw per image: areas, aspects (log-uniform), top, left, apply.
    u = jax.random.uniform(rng, (batch, 2 * attempts + 3))
    target = (area[0] + (area[1] - area[0]) * u[:, :attempts]) * (h * w)
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    ratio = jnp.exp(log_lo + (log_hi - log_lo) * u[:, attempts : 2 * attempts])
    box_h = jnp.round(jnp.sqrt(target * ratio))
    box_w = jnp.round(jnp.sqrt(target / ratio))
    fits = (box_h < h) & (box_w < w)
    first = jnp.argmax(fits, axis=1)[:, None]
    box_h = jnp.take_along_axis(box_h, first, axis=1)[:, 0]
    box_w = jnp.take_along_axis(box_w, first, axis=1)[:, 0]
    top = jnp.floor(u[:, -3] * (h - box_h + 1))
    left = jnp.floor(u[:, -2] * (w - box_w + 1))
    erase = (u[:, -1] < prob) & fits.any(axis=1)
    rows = jnp.arange(h)[None, :, None]
    cols = jnp.arange(w)[None, None, :]
    inside = (
        erase[:, None, None]
        & (rows >= top[:, None, None])
        & (rows < (top + box_h)[:, None, None])
        & (cols >= left[:, None, None])
        & (cols < (left + box_w)[:, None, None])
    )
    return jnp.where(inside[..., None], jnp.zeros((), images.dtype), images)


def mean_fill(mean: Sequence[float]) -> np.ndarray:
    """timm's RandAugment fill colour: ``min(255, round(255 · mean))`` per channel."""
    return np.minimum(255.0, np.round(255.0 * np.asarray(mean, np.float64))).astype(np.float32)


def augment_batch(
    rng: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    *,
    policy: str,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    label_smoothing: float = 0.1,
    mixup_alpha: float = 0.5,
    erase_prob: float = 0.25,
) -> tuple[jax.Array, jax.Array]:
    """uint8 ``[B, H, W, C]`` -> (normalised float32 ``[B, H, W, C]``, soft targets ``[B, K]``).

    Keyword arguments are static (Python values, closed over under ``jax.jit``). ``mixup_alpha`` and
    ``erase_prob`` apply to ``"official"`` only; 0 switches either off. Target rows sum to 1.
    """
    one_of(POLICIES)("augment", policy)
    targets = smooth_targets(labels, num_classes, label_smoothing)
    k_flip, k_geometry, k_mixup, k_erase = jax.random.split(rng, 4)
    if policy == "none":
        return normalize(images, mean, std), targets
    if policy == "crop_flip":
        x = random_flip(k_flip, random_crop(k_geometry, images))
        return normalize(x, mean, std), targets
    x = random_flip(k_flip, images.astype(jnp.float32))
    x = rand_augment(k_geometry, x, fill=mean_fill(mean))
    if mixup_alpha > 0:
        x, targets = mixup(k_mixup, x, targets, mixup_alpha)
        x = jnp.round(x)
    x = normalize(x, mean, std)
    if erase_prob > 0:
        x = random_erase(k_erase, x, erase_prob)
    return x, targets
