"""snnjax.pooling.max_pool: flax's values and gradient (first maximal tap on ties), finite differences, errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from snnjax.checks import InvalidValue
from snnjax.pooling import max_pool

CONFIGS = [  # window, strides, padding: QKFormer's patch-embedding pool, YOLOv5's SPPF, a plain 2×2 pool
    ((3, 3), (2, 2), ((1, 1), (1, 1))),
    ((5, 5), (1, 1), ((2, 2), (2, 2))),
    ((2, 2), (2, 2), ((0, 0), (0, 0))),
]


def tie_heavy(shape, seed=0):
    """Small integers, so that most windows hold their maximum more than once (as after spikes)."""
    return jnp.asarray(np.random.default_rng(seed).integers(-2, 3, shape), jnp.float32)


@pytest.mark.parametrize("window, strides, padding", CONFIGS)
def test_values_and_gradient_equal_flax_max_pool_on_ties(window, strides, padding):
    x = tie_heavy((2, 7, 9, 3))
    ours, vjp = jax.vjp(jax.jit(lambda a: max_pool(a, window, strides, padding)), x)
    flax_y, flax_vjp = jax.vjp(lambda a: nn.max_pool(a, window, strides, padding), x)
    np.testing.assert_array_equal(ours, flax_y)
    g = tie_heavy(ours.shape, seed=1)  # integer cotangents: the scattered sums are exact in any order
    np.testing.assert_array_equal(vjp(g)[0], flax_vjp(g)[0])


@pytest.mark.parametrize("window, strides, padding", CONFIGS)
def test_gradient_matches_finite_differences_away_from_ties(window, strides, padding):
    x = jax.random.permutation(jax.random.key(0), jnp.arange(2 * 6 * 5 * 2, dtype=jnp.float32)).reshape(2, 6, 5, 2)
    check_grads(jax.jit(lambda a: max_pool(a, window, strides, padding)), (x / 7.0,), order=1, modes=["rev"], eps=1e-2)


def test_a_window_of_equal_values_sends_its_gradient_to_the_first_tap():
    x = jnp.zeros((1, 2, 2, 1))
    grad = jax.grad(lambda a: max_pool(a, (2, 2), (2, 2)).sum())(x)
    np.testing.assert_array_equal(grad[0, :, :, 0], [[1.0, 0.0], [0.0, 0.0]])


def test_time_major_input_bfloat16_and_jit():
    x = tie_heavy((2, 3, 8, 8, 4)).astype(jnp.bfloat16)  # [T, B, H, W, C]
    y = jax.jit(lambda a: max_pool(a, (3, 3), (2, 2), ((1, 1), (1, 1))))(x)
    assert y.shape == (2, 3, 4, 4, 4) and y.dtype == jnp.bfloat16
    np.testing.assert_array_equal(y[1], nn.max_pool(x[1], (3, 3), (2, 2), ((1, 1), (1, 1))))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"window": (3,)}, "window"),
        ({"strides": (0, 1)}, "strides"),
        ({"window": (2.5, 2)}, "window"),
        ({"padding": ((3, 3), (0, 0))}, "padding"),
        ({"padding": (1, 1)}, "padding"),
        ({"x": jnp.zeros((4, 4), jnp.float32)}, "x"),
        ({"x": jnp.zeros((1, 4, 4, 1), jnp.int32)}, "x"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    arguments = {"x": jnp.zeros((1, 4, 4, 1)), "window": (3, 3), "strides": (1, 1), "padding": ((1, 1), (1, 1))}
    with pytest.raises(InvalidValue, match=f"^{name}"):
        max_pool(**{**arguments, **kwargs})


def test_windows_of_more_than_127_taps_index_them_in_int32():
    x = jnp.arange(13 * 13 * 2, dtype=jnp.float32).reshape(1, 13, 13, 2)  # every maximum is tap 143, the last
    weights = jnp.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    ours = jax.jit(jax.grad(lambda a: (max_pool(a, (12, 12), (1, 1)) * weights).sum()))(x)
    expected = jax.grad(lambda a: (nn.max_pool(a, (12, 12), (1, 1)) * weights).sum())(x)
    np.testing.assert_array_equal(ours, expected)
