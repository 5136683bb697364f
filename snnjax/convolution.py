"""``lax.conv_general_dilated`` with the same numbers, 1×1 kernels as a matmul.

Flax's ``nn.Conv(conv_general_dilated=conv_general_dilated)`` takes it as is. A 1×1 kernel with unit
strides, no padding and channels-last dimension numbers (``NHWC``/``HWIO``/``NHWC``, given explicitly, as
Flax does; no feature groups or input dilation) runs as one matmul over flattened positions,
``y[p, o] = Σ_c x[p, c] · w[0, 0, c, o]``; everything else is passed on to ``jax.lax.conv_general_dilated``.
Which CPU kernels run the rest is an XLA option: see :mod:`snnjax.engine.compiler`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax


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
    """``jax.lax.conv_general_dilated``'s values and gradients; channels-last 1×1 kernels as a matmul."""
    pointwise = (
        3 <= lhs.ndim <= 5
        and dimension_numbers is not None
        and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == _channels_last_numbers(lhs, rhs)
        and feature_group_count == 1
        and all(d == 1 for d in (lhs_dilation or ()))
        and all(k == 1 for k in rhs.shape[:-2])
        and all(s == 1 for s in window_strides)
        and all(d == 1 for d in (rhs_dilation or ()))
        and (padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding))
    )
    if pointwise:
        rows = lhs.reshape(-1, lhs.shape[-1])
        y = jax.lax.dot_general(rows, rhs.reshape(rhs.shape[-2:]), (((1,), (0,)), ((), ())), precision=precision)
        return y.reshape(*lhs.shape[:-1], rhs.shape[-1])
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
