"""Max-pooling whose gradient is a masked strided scatter instead of XLA's select-and-scatter."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from snnjax.checks import check, is_int


def _taps(x: jax.Array, window, strides, padding) -> list[jax.Array]:
    """The window's taps in row-major order: tap (i, j) = x_pad[..., s_h p + i, s_w q + j, :] for every output
    (p, q), where x_pad is x padded with -inf."""
    (kh, kw), (sh, sw) = window, strides
    pad = [(0, 0)] * (x.ndim - 3) + [tuple(padding[0]), tuple(padding[1]), (0, 0)]
    xp = jnp.pad(x, pad, constant_values=-jnp.inf)
    P = (xp.shape[-3] - kh) // sh + 1
    Q = (xp.shape[-2] - kw) // sw + 1
    lead = xp.shape[:-3]
    return [
        jax.lax.slice(
            xp,
            (0,) * len(lead) + (i, j, 0),
            lead + (i + sh * (P - 1) + 1, j + sw * (Q - 1) + 1, xp.shape[-1]),
            (1,) * len(lead) + (sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]


def _pool_and_first(x, window, strides, padding) -> tuple[jax.Array, jax.Array]:
    """y, and the index of each output's first maximal tap (int8 up to 127 taps). The backward pass keeps
    the index: computing it there, inside the fused scatter, would redo the comparison chain per tap."""
    taps = _taps(x, window, strides, padding)
    index = jnp.int8 if len(taps) <= jnp.iinfo(jnp.int8).max else jnp.int32
    y, first = taps[0], jnp.zeros(taps[0].shape, index)
    for k, tap in enumerate(taps[1:], start=1):
        first = jnp.where(tap > y, index(k), first)
        y = jnp.maximum(y, tap)
    return y, first


@partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, padding):
    return _pool_and_first(x, window, strides, padding)[0]  # jit drops the unused index


def _max_pool_fwd(x, window, strides, padding):
    y, first = _pool_and_first(x, window, strides, padding)
    return y, (x.shape, first)


def _max_pool_bwd(window, strides, padding, residuals, g):
    """dx_pad[s_h p + i, s_w q + j] += g[p, q] where tap (i, j) is the first maximal one of output (p, q)."""
    shape, first = residuals
    kw, (sh, sw) = window[1], strides
    Hp, Wp = shape[-3] + sum(padding[0]), shape[-2] + sum(padding[1])
    P, Q = first.shape[-3], first.shape[-2]
    no_pad = [(0, 0, 0)] * (len(shape) - 3)
    zero = jnp.zeros((), g.dtype)
    dx_pad = None
    for k in range(window[0] * kw):
        i, j = divmod(k, kw)
        spread = [(i, Hp - i - sh * (P - 1) - 1, sh - 1), (j, Wp - j - sw * (Q - 1) - 1, sw - 1), (0, 0, 0)]
        scattered = jax.lax.pad(jnp.where(first == k, g, zero), zero, no_pad + spread)
        dx_pad = scattered if dx_pad is None else dx_pad + scattered
    (top, _), (left, _) = padding
    return (dx_pad[..., top : top + shape[-3], left : left + shape[-2], :],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool(
    x: jax.Array,
    window: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]] = ((0, 0), (0, 0)),
) -> jax.Array:
    """Max-pool over the H and W axes of channels-last ``x [..., H, W, C]``, padded with -inf:
    ``y[..., p, q, c] = max_{i < k_h, j < k_w} x_pad[..., s_h·p + i, s_w·q + j, c]``.

    The same values as ``flax.linen.max_pool`` and the same gradient: each output's cotangent goes to the
    first maximal tap of its window in row-major order (PyTorch's and XLA's rule, which matters after
    convolving binary spikes, where ties are common). The forward pass of a gradient also keeps that tap's
    index; the backward pass adds one masked strided scatter per tap, which XLA fuses into one loop (where
    several fusions consume the gradient, XLA writes each tap out and adds them inside each consumer).
    XLA's select-and-scatter took 4–7× longer on the CPU (docs/performance.md §7.2, §10.2).
    """
    window, strides = tuple(window), tuple(strides)
    try:
        padding = tuple((int(before), int(after)) for before, after in padding)
    except (TypeError, ValueError):
        padding = ()
    check(len(window) == 2 and all(is_int(k) and k >= 1 for k in window), "window", window, "two ints >= 1 (k_h, k_w)")
    check(len(strides) == 2 and all(is_int(s) and s >= 1 for s in strides), "strides", strides, "two ints >= 1")
    check(
        len(padding) == 2 and all(0 <= min(p) and max(p) < k for p, k in zip(padding, window)),
        "padding",
        padding,
        "((top, bottom), (left, right)), each >= 0 and smaller than the window",
    )
    check(x.ndim >= 3 and jnp.issubdtype(x.dtype, jnp.floating), "x", x.shape, "a float array [..., H, W, C]")
    return _max_pool(x, window, strides, padding)
