"""Time-folded convolution / BatchNorm helpers and SEW residual connections.

Convs and BatchNorm act on ``[T, B, H, W, C]`` by folding time into the batch (``[T·B, H, W, C]``),
so BN statistics are shared over time steps, as in SpikingJelly and QKFormer.
"""

from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# PyTorch's default conv/linear weight init, kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in).
torch_conv_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# PyTorch BatchNorm defaults (momentum 0.1 in PyTorch's convention = 0.9 in Flax's), eps 1e-5.
conv_bn_kwargs = {"momentum": 0.9, "epsilon": 1e-5}

SEW_MODES = ("add", "and", "iand")


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


def sew(spikes: jax.Array, shortcut: jax.Array, mode: str) -> jax.Array:
    """SEW residual connect g(A, S) of spikes A and shortcut S: add A+S, and A·S, iand (1−A)·S."""
    if mode == "add":
        return spikes + shortcut
    if mode == "and":
        return spikes * shortcut
    if mode == "iand":
        return (1.0 - spikes) * shortcut
    raise ValueError(f"sew: got {mode!r}; accepted: {', '.join(map(repr, SEW_MODES))}")


class ConvBN(nn.Module):
    """Conv (PyTorch init) then BatchNorm over time-folded ``[T, B, H, W, C]`` input.

    ``pool`` inserts a 3×3 stride-2 max-pool (padding 1, −inf) between BN and the output, as in
    QKFormer's patch embedding.
    """

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: Sequence[int] = (1, 1)
    padding: int | str = 1
    use_bias: bool = False
    pool: bool = False
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        T = x.shape[0]
        y = fold_time(x)
        fan_in = y.shape[-1] * math.prod(self.kernel_size)
        y = nn.Conv(self.features, tuple(self.kernel_size), tuple(self.strides), padding=self.padding,
                    use_bias=self.use_bias, kernel_init=torch_conv_init,
                    bias_init=torch_bias_init(fan_in), dtype=self.dtype, name="conv")(y)
        y = nn.BatchNorm(use_running_average=not train, dtype=self.dtype, name="bn", **conv_bn_kwargs)(y)
        if self.pool:
            y = nn.max_pool(y, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        return unfold_time(y, T)
