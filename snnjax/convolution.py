"""``lax.conv_general_dilated`` with the same numbers, in the forms XLA's CPU backend runs fastest.

Flax's ``nn.Conv(conv_general_dilated=conv_general_dilated)`` takes it as is. For channels-last dimension
numbers (``NHWC``/``HWIO``/``NHWC``, given explicitly, as Flax does) and no feature groups or input dilation:

* a 1×1 kernel with unit strides and no padding runs as one matmul over flattened positions,
  ``y[p, o] = Σ_c x[p, c] · w[0, 0, c, o]``;
* any other kernel runs as XLA's convolution, with a weight gradient that, on a CPU, sums XLA's weight
  gradient over chunks of the batch, ``dW = Σ_k dW(x[k], dy[k])``, each chunk's output gradient small
  enough to stay in cache (:data:`CHUNK_BYTES`). XLA's CPU kernel slows down once the output gradient
  outgrows the cache: on QKFormer's 32×32×128 layers (batch 64) it runs 2–3× slower than on the same work
  in chunks (docs/performance.md §8); with several devices the batch is split over them and is not chunked.
  Other platforms differentiate the convolution as XLA does.

Everything else is passed on to ``jax.lax.conv_general_dilated`` unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp

# Output-gradient bytes per weight-gradient chunk on the CPU: a few images' worth, well inside a core's
# share of a server CPU's last-level cache (QKFormer-3-256's 32×32×128 layer: 4 of 64 images).
CHUNK_BYTES = 2 * 1024 * 1024


def _channels_last_numbers(lhs: jax.Array, rhs: jax.Array) -> jax.lax.ConvDimensionNumbers:
    """The dimension numbers of ``NH…C`` input, ``H…IO`` kernel and ``NH…C`` output."""
    spatial = "HWD"[: lhs.ndim - 2]
    return jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, (f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"))


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    *,
    lhs_dilation: Sequence[int] | None = None,
    rhs_dilation: Sequence[int] | None = None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
) -> jax.Array:
    """``jax.lax.conv_general_dilated``'s values and gradients (see the module docstring for the forms)."""
    plain = (
        3 <= lhs.ndim <= 5
        and dimension_numbers is not None
        and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _channels_last_numbers(lhs, rhs)
        and feature_group_count == 1
        and all(d == 1 for d in (lhs_dilation or ()))
    )
    if not plain:
        return jax.lax.conv_general_dilated(
            lhs,
            rhs,
            window_strides,
            padding,
            lhs_dilation=lhs_dilation,
            rhs_dilation=rhs_dilation,
            dimension_numbers=dimension_numbers,
            feature_group_count=feature_group_count,
            precision=precision,
        )
    no_padding = padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding)
    pointwise = (
        all(k == 1 for k in rhs.shape[:-2])
        and all(s == 1 for s in window_strides)
        and all(d == 1 for d in (rhs_dilation or ()))
        and no_padding
    )
    if pointwise:
        rows = lhs.reshape(-1, lhs.shape[-1])
        y = jax.lax.dot_general(rows, rhs.reshape(rhs.shape[-2:]), (((1,), (0,)), ((), ())), precision=precision)
        return y.reshape(*lhs.shape[:-1], rhs.shape[-1])
    settings = (
        tuple(window_strides),
        padding if isinstance(padding, str) else tuple(tuple(p) for p in padding),
        None if rhs_dilation is None else tuple(rhs_dilation),
        precision,
    )
    return _conv(lhs, rhs, settings)


def _plain_conv(lhs: jax.Array, rhs: jax.Array, settings: tuple) -> jax.Array:
    window_strides, padding, rhs_dilation, precision = settings
    return jax.lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        rhs_dilation=rhs_dilation,
        dimension_numbers=_channels_last_numbers(lhs, rhs),
        precision=precision,
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv(lhs: jax.Array, rhs: jax.Array, settings: tuple) -> jax.Array:
    return _plain_conv(lhs, rhs, settings)


def _conv_fwd(lhs, rhs, settings):
    return _plain_conv(lhs, rhs, settings), (lhs, rhs)


def _weight_gradient(lhs: jax.Array, rhs: jax.Array, g: jax.Array, settings: tuple) -> jax.Array:
    return jax.vjp(lambda w: _plain_conv(lhs, w, settings), rhs)[1](g)[0]


def batch_chunks(g: jax.Array, chunk_bytes: int) -> list[slice]:
    """Slices of ``g``'s leading (batch) axis, each holding at most ``chunk_bytes`` of it (one example at
    least); one slice when all of it fits."""
    per_example = max(1, g[0].size * g.dtype.itemsize)
    rows = max(1, chunk_bytes // per_example)
    return [slice(start, min(start + rows, g.shape[0])) for start in range(0, g.shape[0], rows)]


def chunked_weight_gradient(
    lhs: jax.Array, rhs: jax.Array, g: jax.Array, settings: tuple, chunk_bytes: int | None = None
) -> jax.Array:
    """The convolution's weight gradient for output gradient ``g``, summed in float32 over
    :func:`batch_chunks` of ``g`` (and the matching examples of ``lhs``) of ``chunk_bytes``
    (None: :data:`CHUNK_BYTES`). In one piece where JAX has several devices: there a batch is usually
    split over them, and chunks that cut across their shards would move data between devices."""
    chunks = batch_chunks(g, CHUNK_BYTES if chunk_bytes is None else chunk_bytes)
    if len(chunks) <= 1 or jax.device_count() > 1:
        return _weight_gradient(lhs, rhs, g, settings)
    total = sum(_weight_gradient(lhs[c], rhs, g[c], settings).astype(jnp.float32) for c in chunks)
    return total.astype(rhs.dtype)


def _conv_bwd(settings, residuals, g):
    lhs, rhs = residuals
    g_lhs = jax.vjp(lambda x: _plain_conv(x, rhs, settings), lhs)[1](g)[0]
    g_rhs = jax.lax.platform_dependent(
        lhs,
        rhs,
        g,
        cpu=functools.partial(chunked_weight_gradient, settings=settings),
        default=functools.partial(_weight_gradient, settings=settings),
    )
    return g_lhs, g_rhs


_conv.defvjp(_conv_fwd, _conv_bwd)
