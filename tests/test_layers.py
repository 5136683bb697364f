"""Time folding, SEW connections and the time-folded ConvBN."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import layers


def test_fold_and_unfold_time_are_inverse_and_time_major():
    x = jnp.arange(2 * 3 * 4.0).reshape(2, 3, 4)
    folded = layers.fold_time(x)
    chex.assert_shape(folded, (6, 4))
    np.testing.assert_array_equal(folded[3], x[1, 0])
    np.testing.assert_array_equal(layers.unfold_time(folded, 2), x)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_mean_over_time_averages_the_leading_axis_in_the_input_dtype(dtype):
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 2, 4)).astype(dtype)
    mean = layers.mean_over_time(x)
    assert mean.dtype == dtype
    rtol = 1e-6 if dtype == jnp.float32 else 1e-2
    np.testing.assert_allclose(mean.astype(jnp.float32), x.astype(jnp.float32).mean(0), rtol=rtol)
    grad = jax.grad(lambda x: layers.mean_over_time(x).astype(jnp.float32).sum())(x)
    np.testing.assert_allclose(grad.astype(jnp.float32), 1.0 / 3.0, rtol=1e-2)
    assert " reduce(" not in jax.jit(layers.mean_over_time).lower(x).compile().as_text()


def test_sew_modes():
    a, s = jnp.asarray([0.0, 1.0, 0.0, 1.0]), jnp.asarray([0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(layers.sew(a, s, "add"), [0, 1, 1, 2])
    np.testing.assert_array_equal(layers.sew(a, s, "and"), [0, 0, 0, 1])
    np.testing.assert_array_equal(layers.sew(a, s, "iand"), [0, 0, 1, 0])
    with pytest.raises(ValueError, match="sew: got 'or'.*'add'"):
        layers.sew(a, s, "or")


def test_torch_inits_are_uniform_with_the_fan_in_bound():
    w = layers.torch_conv_init(jax.random.PRNGKey(0), (3, 3, 16, 2000))
    bound = 1 / math.sqrt(3 * 3 * 16)
    assert float(jnp.abs(w).max()) <= bound
    np.testing.assert_allclose(float(w.std()), bound / math.sqrt(3), rtol=0.02)
    b = layers.torch_bias_init(144)(jax.random.PRNGKey(1), (5000,))
    assert float(jnp.abs(b).max()) <= bound and float(jnp.abs(b).max()) > 0.9 * bound


def test_conv_bn_shares_batch_statistics_over_time():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 8, 8, 4))
    module = layers.ConvBN(6, pool=True)
    variables = module.init(jax.random.PRNGKey(1), x)
    y, state = module.apply(variables, x, train=True, mutable=["batch_stats"])
    chex.assert_shape(y, (3, 2, 4, 4, 6))
    folded = layers.fold_time(x)
    z = jax.lax.conv_general_dilated(
        folded,
        variables["params"]["conv"]["kernel"],
        (1, 1),
        ((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(state["batch_stats"]["bn"]["mean"], 0.1 * z.mean((0, 1, 2)), rtol=1e-4, atol=1e-6)
    normalised = (z - z.mean((0, 1, 2))) / jnp.sqrt(z.var((0, 1, 2)) + 1e-5)
    pooled = jax.lax.reduce_window(
        normalised, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
    )
    np.testing.assert_allclose(layers.fold_time(y), pooled, atol=1e-4)


def test_conv_bn_scale_init_sets_the_initial_batchnorm_scale():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 1, 4, 4, 3))
    module = layers.ConvBN(5, bn_scale_init=2.0)
    variables = module.init(jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(variables["params"]["bn"]["scale"], np.full(5, 2.0))
    y, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(np.std(np.asarray(layers.fold_time(y)), axis=(0, 1, 2)), 2.0, rtol=1e-3)
