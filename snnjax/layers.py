"""Time-folded convolution / BatchNorm helpers and SEW residual connections.

Convs and BatchNorm act on ``[T, B, H, W, C]`` by folding time into the batch (``[T·B, H, W, C]``),
so BN statistics are shared over time steps, as in SpikingJelly and QKFormer.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import InvalidValue
from snnjax.convolution import conv_general_dilated
from snnjax.pooling import max_pool

# PyTorch's default conv/linear weight init, kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in).
torch_conv_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

SEW_MODES = ("add", "and", "iand")
# Compute dtypes a model config names (parameters stay float32).
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def torch_bias_init(fan_in: int):
    """PyTorch's default bias init for a layer with ``fan_in`` inputs: U(−1/√fan_in, 1/√fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def fold_time(x: jax.Array) -> jax.Array:
    """``[T, B, ...] -> [T·B, ...]``."""
    return x.reshape((x.shape[0] * x.shape[1],) + x.shape[2:])


def unfold_time(x: jax.Array, T: int) -> jax.Array:
    """``[T·B, ...] -> [T, B, ...]``."""
    return x.reshape((T, x.shape[0] // T) + x.shape[1:])


def mean_over_time(x: jax.Array) -> jax.Array:
    """(1/T) Σ_t x_t of ``x [T, ...]``, summed in at least float32 as T − 1 element-wise adds of the time
    slices, returned in ``x``'s dtype.

    XLA's CPU backend reduces a short leading axis of a large array at ~1 GB/s, 20-50× slower than these
    adds, which fuse into one pass on every backend (docs/performance.md §11).
    """
    accumulate = jnp.promote_types(x.dtype, jnp.float32)
    total = functools.reduce(jnp.add, [x[t].astype(accumulate) for t in range(x.shape[0])])
    return (total / x.shape[0]).astype(x.dtype)


def sew(spikes: jax.Array, shortcut: jax.Array, mode: str) -> jax.Array:
    """SEW residual connect g(A, S) of spikes A and shortcut S: add A+S, and A·S, iand (1−A)·S."""
    if mode == "add":
        return spikes + shortcut
    if mode == "and":
        return spikes * shortcut
    if mode == "iand":
        return (1.0 - spikes) * shortcut
    raise InvalidValue("sew", mode, ", ".join(map(repr, SEW_MODES)))


def conv_bn(
    x: jax.Array,
    *,
    features: int,
    kernel_size: Sequence[int] = (3, 3),
    strides: Sequence[int] = (1, 1),
    padding: int | str = 1,
    use_bias: bool = False,
    pool: bool = False,
    train: bool = False,
    bn_momentum: float = 0.9,
    bn_epsilon: float = 1e-5,
    bn_scale_init: float = 1.0,
    dtype: jnp.dtype | None = None,
) -> jax.Array:
    """Conv (PyTorch init) → BatchNorm (→ 3×3/2 max-pool) on ``[N, H, W, C]``.

    Call it inside a compact Linen method: it creates that module's ``conv`` and ``bn`` submodules.
    BN defaults are PyTorch's (momentum 0.1 = Flax 0.9, eps 1e-5, scale γ initialised to 1; ``bn_scale_init``
    sets another initial γ).
    """
    fan_in = x.shape[-1] * math.prod(kernel_size)
    y = nn.Conv(
        features,
        tuple(kernel_size),
        tuple(strides),
        padding=padding,
        use_bias=use_bias,
        kernel_init=torch_conv_init,
        bias_init=torch_bias_init(fan_in),
        dtype=dtype,
        conv_general_dilated=conv_general_dilated,
        name="conv",
    )(x)
    y = nn.BatchNorm(
        use_running_average=not train,
        momentum=bn_momentum,
        epsilon=bn_epsilon,
        dtype=dtype,
        scale_init=nn.initializers.constant(bn_scale_init),
        name="bn",
    )(y)
    if pool:
        y = max_pool(y, (3, 3), (2, 2), ((1, 1), (1, 1)))
    return y


class ConvBN(nn.Module):
    """:func:`conv_bn` over time-folded ``[T, B, H, W, C]`` input (BN statistics shared over time).

    ``pool`` inserts a 3×3 stride-2 max-pool (padding 1, −inf) after BN, as in QKFormer's patch embedding.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    padding: int | str = 1
    use_bias: bool = False
    pool: bool = False
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    bn_scale_init: float = 1.0
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = conv_bn(
            fold_time(x),
            features=self.features,
            kernel_size=self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=self.use_bias,
            pool=self.pool,
            train=train,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            bn_scale_init=self.bn_scale_init,
            dtype=self.dtype,
        )
        return unfold_time(y, x.shape[0])
