"""RandAugment as timm's ``rand-m9-n1-mstd0.4-inc1`` (timm 0.6 ``auto_augment.py``), in JAX.

Batches are float32 ``[B, H, W, C]`` holding integers in [0, 255], like the uint8 PIL images timm
works on, with one op per image; every op returns integers again, with PIL's rounding (checked
against Pillow in the tests):

- pointwise ops are 256-entry look-up tables per channel: AutoContrast (``⌊(v − lo)·255/(hi − lo)⌋``
  per channel, identity if ``hi ≤ lo``), Equalize (PIL's histogram LUT), Invert (``255 − v``),
  PosterizeIncreasing (keep the ``bits`` high bits), SolarizeIncreasing (``v < t ? v : 255 − v``),
  SolarizeAdd (``v < 128 ? min(v + add, 255) : v``);
- enhance ops are PIL's ``blend``: ``clip(⌊d + f·(v − d)⌋, 0, 255)`` with the degenerate image ``d``
  = luma (Color), its rounded mean (Contrast), 0 (Brightness), the 3×3 SMOOTH filter with border
  pixels kept (Sharpness). Luma is PIL's ``(19595 R + 38470 G + 7471 B + 2¹⁵) >> 16`` (the channel
  mean for C ≠ 3);
- geometric ops are PIL affine maps ``(x, y)_in = A (x, y)_out + t`` in pixel-corner coordinates:
  Rotate (about the centre, degrees counter-clockwise), ShearX/Y, TranslateX/YRel, out-of-image
  pixels get ``fill``. Sampling is **bilinear** (PIL's BILINEAR exactly), where timm's CIFAR recipe
  asks PIL for bicubic.

Magnitude ``m ~ N(9, 0.4)`` clipped to [0, 10], level ``l = m / 10``, random sign ``±`` (p 0.5):
Rotate ``±30 l`` deg, ShearX/Y ``±0.3 l``, TranslateX/YRel ``±0.45 l`` of the width/height,
PosterizeIncreasing ``4 − ⌊4 l⌋`` bits (0 bits: black, as older Pillow gave; Pillow 13 refuses 0),
SolarizeIncreasing threshold ``256 − ⌊256 l⌋``, SolarizeAdd ``⌊110 l⌋``,
Color/Contrast/Brightness/SharpnessIncreasing factor ``max(0.1, 1 ± 0.9 l)``. AutoContrast
differs from PIL (which computes in double precision) by one grey level in 0.4 % of its table
entries. All gathers and scatters are per image (batch dimensions), so a batch sharded over
devices is augmented without communication.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
_LUT_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
)
_ENHANCE_OPS = (
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
)
_AFFINE_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


def _select(op: jax.Array, values: dict[str, jax.Array], default: jax.Array) -> jax.Array:
    """Per image ``b``: ``values[OPS[op[b]]][b]``, or ``default[b]`` for ops not in ``values``.

    ``op`` is ``[B]``; values broadcast against ``default`` (leading axis = batch).
    """
    shape = jnp.broadcast_shapes(default.shape, *(v.shape for v in values.values()))
    which = op.reshape(op.shape + (1,) * (len(shape) - op.ndim))
    return jnp.select(
        [which == OPS.index(name) for name in values],
        [jnp.broadcast_to(v, shape) for v in values.values()],
        jnp.broadcast_to(default, shape),
    )


def _member(op: jax.Array, names: tuple[str, ...]) -> jax.Array:
    """``[B, 1, 1, 1]`` mask: ``OPS[op[b]] in names``."""
    return jnp.isin(op, jnp.array([OPS.index(name) for name in names]))[:, None, None, None]


def level_to_arg(op: jax.Array, magnitude: jax.Array, negate: jax.Array) -> jax.Array:
    """timm's level functions, per image: the op's argument for ``magnitude`` in [0, 10]."""
    level = magnitude / 10.0
    signed = jnp.where(negate, -level, level)
    enhance = jnp.maximum(0.1, 1.0 + 0.9 * signed)
    return _select(
        op,
        {
            "Rotate": 30.0 * signed,
            "PosterizeIncreasing": 4.0 - jnp.floor(4.0 * level),
            "SolarizeIncreasing": 256.0 - jnp.floor(256.0 * level),
            "SolarizeAdd": jnp.floor(110.0 * level),
            **{name: enhance for name in _ENHANCE_OPS},
            "ShearX": 0.3 * signed,
            "ShearY": 0.3 * signed,
            "TranslateXRel": 0.45 * signed,
            "TranslateYRel": 0.45 * signed,
        },
        jnp.zeros_like(level),
    )


def _floordiv(n: jax.Array, d) -> jax.Array:
    """``n // d`` for integers ``0 ≤ n < 2²⁴``, ``d ≥ 1``, via float32 division (vectorises; exact).

    Exact: ``n`` and ``d`` are representable, and a non-integer ``n / d`` lies at least ``1 / d``
    from the next integer, more than the rounding error ``(n / d)·2⁻²⁴``.
    """
    return jnp.floor(jnp.asarray(n, jnp.float32) / jnp.asarray(d, jnp.float32)).astype(jnp.int32)


def _histograms(v: jax.Array) -> jax.Array:
    """``[B, C, 256]`` per-image, per-channel histograms of int ``[B, H, W, C]`` in [0, 255]."""
    b, _, _, c = v.shape
    index = (jnp.arange(c) * 256 + v).reshape(b, -1)
    return jax.vmap(lambda i: jnp.bincount(i, length=c * 256))(index).reshape(b, c, 256)


def _tables(v: jax.Array, op: jax.Array, arg: jax.Array) -> jax.Array:
    """``[B, C, 256]`` look-up tables of the pointwise ops (identity for other ops)."""
    b, h, w, c = v.shape
    ix = jnp.arange(256, dtype=jnp.int32)
    lo, hi = v.min((1, 2))[..., None], v.max((1, 2))[..., None]
    stretched = jnp.clip(_floordiv(jnp.maximum(ix - lo, 0) * 255, jnp.maximum(hi - lo, 1)), 0, 255)
    hist = _histograms(v)
    step = _floordiv(h * w - jnp.sum(jnp.where(ix == hi, hist, 0), -1, keepdims=True), 255)
    below = jnp.cumsum(hist, axis=-1) - hist
    equalized = jnp.minimum(_floordiv(_floordiv(step, 2) + below, jnp.maximum(step, 1)), 255)
    spread = ((hist > 0).sum(-1, keepdims=True) > 1) & (step > 0)
    a = arg.astype(jnp.int32)[:, None, None]
    return _select(
        op,
        {
            "AutoContrast": jnp.where(hi > lo, stretched, ix),
            "Equalize": jnp.where(spread, equalized, ix),
            "Invert": 255 - ix,
            "PosterizeIncreasing": ix & (256 - (1 << (8 - jnp.clip(a, 0, 8)))),
            "SolarizeIncreasing": jnp.where(ix < a, ix, 255 - ix),
            "SolarizeAdd": jnp.where(ix < 128, jnp.minimum(ix + a, 255), ix),
        },
        jnp.broadcast_to(ix, (b, c, 256)),
    )


def _luma(v: jax.Array) -> jax.Array:
    """PIL's ``convert("L")`` of int ``[B, H, W, C]``: ``[B, H, W]`` (channel mean if C ≠ 3)."""
    if v.shape[-1] == 3:
        return (v[..., 0] * 19595 + v[..., 1] * 38470 + v[..., 2] * 7471 + 32768) >> 16
    return _floordiv(2 * v.sum(-1) + v.shape[-1], 2 * v.shape[-1])


def _smooth(v: jax.Array) -> jax.Array:
    """PIL ``ImageFilter.SMOOTH`` (``[[1,1,1],[1,5,1],[1,1,1]] / 13``, rounded; border kept)."""
    _, h, w, _ = v.shape
    p = jnp.pad(v, ((0, 0), (1, 1), (1, 1), (0, 0)))
    total = sum(p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) + 4 * v
    rows, cols = jnp.arange(h)[:, None, None], jnp.arange(w)[None, :, None]
    border = (rows == 0) | (rows == h - 1) | (cols == 0) | (cols == w - 1)
    return jnp.where(border, v, _floordiv(2 * total + 13, 26))


def _degenerate(v: jax.Array, op: jax.Array) -> jax.Array:
    """The image each enhance op blends away from (the image itself for other ops)."""
    luma = _luma(v)
    n = luma.shape[1] * luma.shape[2]
    mean = _floordiv(luma.sum((1, 2)) + n // 2, n)  # = int(mean + 0.5); exact up to 256 × 256
    return _select(
        op,
        {
            "ColorIncreasing": luma[..., None],
            "ContrastIncreasing": mean[:, None, None, None],
            "BrightnessIncreasing": jnp.zeros((), v.dtype),
            "SharpnessIncreasing": _smooth(v),
        },
        v,
    )


def _affine_matrix(op: jax.Array, arg: jax.Array, height: int, width: int) -> jax.Array:
    """PIL affine coefficients ``[B, 6]``: ``x_in = a x + b y + c``, ``y_in = d x + e y + f``."""
    angle = -jnp.deg2rad(arg)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    cx, cy = width / 2.0, height / 2.0
    one, zero = jnp.ones_like(arg), jnp.zeros_like(arg)
    rotate = [cos, sin, cx - cos * cx - sin * cy, -sin, cos, cy + sin * cx - cos * cy]
    return _select(
        op,
        {
            "Rotate": jnp.stack(rotate, -1),
            "ShearX": jnp.stack([one, arg, zero, zero, one, zero], -1),
            "ShearY": jnp.stack([one, zero, zero, arg, one, zero], -1),
            "TranslateXRel": jnp.stack([one, zero, arg * width, zero, one, zero], -1),
            "TranslateYRel": jnp.stack([one, zero, zero, zero, one, arg * height], -1),
        },
        jnp.stack([one, zero, zero, zero, one, zero], -1),
    )


def _warp(images: jax.Array, matrix: jax.Array, fill: jax.Array) -> jax.Array:
    """PIL ``transform(AFFINE, resample=BILINEAR, fillcolor=fill)`` per image, floored like PIL."""
    b, h, w, c = images.shape
    a, b_, c_, d, e, f = (m[:, None, None] for m in matrix.T)
    y, x = jnp.meshgrid(jnp.arange(h) + 0.5, jnp.arange(w) + 0.5, indexing="ij")
    xin, yin = a * x + b_ * y + c_, d * x + e * y + f
    inside = (xin >= 0) & (xin < w) & (yin >= 0) & (yin < h)
    x0, y0 = jnp.floor(xin - 0.5), jnp.floor(yin - 0.5)
    dx, dy = (xin - 0.5 - x0)[..., None], (yin - 0.5 - y0)[..., None]
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    flat = images.reshape(b, h * w, c)

    def pixel(yi, xi):
        index = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)
        return jnp.take_along_axis(flat, index.reshape(b, h * w, 1), axis=1).reshape(b, h, w, c)

    top = pixel(y0, x0) * (1 - dx) + pixel(y0, x0 + 1) * dx
    bottom = pixel(y0 + 1, x0) * (1 - dx) + pixel(y0 + 1, x0 + 1) * dx
    return jnp.where(inside[..., None], jnp.floor(top * (1 - dy) + bottom * dy), fill)


def apply_ops(images: jax.Array, op: jax.Array, arg: jax.Array, fill: jax.Array) -> jax.Array:
    """Apply ``OPS[op[b]]`` with argument ``arg[b]`` (from :func:`level_to_arg`) to image ``b``.

    ``images``: float ``[B, H, W, C]`` in [0, 255] (integer-valued); ``fill``: ``[C]``. Every op is
    one of three primitives (a per-channel LUT, a blend, an affine warp), so a batch with one op
    per image costs one of each, not fifteen ops.
    """
    _, h, w, _ = images.shape
    v = images.astype(jnp.int32)
    tables = _tables(v, op, arg)[:, None, None]  # [B, 1, 1, C, 256]
    pointwise = jnp.take_along_axis(tables, v[..., None], axis=-1)[..., 0]
    degenerate = _degenerate(v, op).astype(images.dtype)
    factor = arg[:, None, None, None]
    enhanced = jnp.clip(jnp.floor(degenerate + factor * (images - degenerate)), 0, 255)
    warped = _warp(images, _affine_matrix(op, arg, h, w), jnp.asarray(fill, images.dtype))
    out = jnp.where(_member(op, _AFFINE_OPS), warped, images)
    out = jnp.where(_member(op, _ENHANCE_OPS), enhanced, out)
    return jnp.where(_member(op, _LUT_OPS), pointwise.astype(images.dtype), out)


def rand_augment(
    rng: jax.Array,
    images: jax.Array,
    *,
    fill: jax.Array,
    magnitude: float = 9.0,
    magnitude_std: float = 0.4,
    prob: float = 0.5,
    num_layers: int = 1,
) -> jax.Array:
    """timm RandAugment on float ``[B, H, W, C]`` images in [0, 255] (integer-valued).

    Per layer and image: op uniform over :data:`OPS`, applied with probability ``prob``,
    magnitude ``clip(N(magnitude, magnitude_std), 0, 10)``, sign ± with p 0.5. ``fill``: ``[C]``.
    """
    batch = images.shape[0]
    # One uniform draw per layer and image: op, apply, sign, magnitude (via the normal quantile).
    for u in jax.random.uniform(rng, (num_layers, 4, batch)):
        op = jnp.minimum(u[0] * len(OPS), len(OPS) - 1).astype(jnp.int32)
        m = jnp.clip(magnitude + magnitude_std * ndtri(u[3]), 0.0, 10.0)
        arg = level_to_arg(op, m, u[2] < 0.5)
        images = jnp.where((u[1] < prob)[:, None, None, None], apply_ops(images, op, arg, fill), images)
    return images
