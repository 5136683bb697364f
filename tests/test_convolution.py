import chex
import jax
import jax.numpy as jnp
import pytest
from jax.test_util import check_grads

from snnjax import convolution
from snnjax.engine.compiler import compiler_options

NHWC = ("NHWC", "HWIO", "NHWC")


def _loss(conv, strides, padding, **settings):
    return lambda x, w: jnp.sum(jnp.sin(conv(x, w, strides, padding, **settings)))


CASES = [
    ((1, 1), (1, 1), "SAME", {}),
    ((1, 1), (1, 1), ((0, 0), (0, 0)), {}),
    ((1, 1), (2, 2), "VALID", {}),
    ((3, 3), (1, 1), "SAME", {}),
    ((3, 3), (2, 2), ((1, 1), (1, 1)), {}),
    ((3, 3), (1, 1), ((2, 2), (2, 2)), {"rhs_dilation": (2, 2)}),
    ((3, 3), (1, 1), "SAME", {"feature_group_count": 3}),
    ((3, 3), (1, 1), ((1, 1), (1, 1)), {"lhs_dilation": (2, 2)}),
]


@pytest.mark.parametrize("kernel, strides, padding, settings", CASES)
def test_values_and_gradients_are_lax_convolutions(kernel, strides, padding, settings):
    """Every form (matmul, passed on) against lax's, compiled with the engine's CPU options."""
    x = jax.random.normal(jax.random.key(0), (3, 5, 6, 3))
    groups = settings.get("feature_group_count", 1)
    w = jax.random.normal(jax.random.key(1), (*kernel, 3 // groups, 6))
    loss = _loss(convolution.conv_general_dilated, strides, padding, dimension_numbers=NHWC, **settings)
    ours = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), compiler_options=compiler_options("cpu"))
    want = jax.value_and_grad(
        _loss(jax.lax.conv_general_dilated, strides, padding, dimension_numbers=NHWC, **settings), argnums=(0, 1)
    )
    chex.assert_trees_all_close(ours(x, w), want(x, w), rtol=1e-5, atol=1e-5)


def test_lax_default_layout_is_passed_on():
    """Without dimension numbers lax means NCHW/OIHW; so does this function."""
    x, w = jax.random.normal(jax.random.key(4), (2, 3, 5, 5)), jax.random.normal(jax.random.key(5), (4, 3, 1, 1))
    ours = _loss(convolution.conv_general_dilated, (1, 1), "SAME")
    want = _loss(jax.lax.conv_general_dilated, (1, 1), "SAME")
    chex.assert_trees_all_close(jax.grad(ours, argnums=(0, 1))(x, w), jax.grad(want, argnums=(0, 1))(x, w))


def test_pointwise_kernels_run_as_matmuls_and_others_as_convolutions():
    """A 1×1 kernel's forward and both gradients lower to no convolution; a 3×3 kernel's to three."""
    x = jnp.ones((5, 4, 4, 3))
    loss = _loss(convolution.conv_general_dilated, (1, 1), "SAME", dimension_numbers=NHWC)

    def convolutions(w):
        return jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, w).as_text().count("stablehlo.convolution")

    assert convolutions(jnp.ones((1, 1, 3, 2))) == 0
    assert convolutions(jnp.ones((3, 3, 3, 2))) == 3


def test_gradients_match_finite_differences():
    x = jax.random.normal(jax.random.key(2), (2, 5, 5, 2))
    for kernel in ((3, 3), (1, 1)):
        w = jax.random.normal(jax.random.key(3), (*kernel, 2, 3))
        check_grads(
            _loss(convolution.conv_general_dilated, (1, 1), "SAME", dimension_numbers=NHWC), (x, w), 1, modes=["rev"]
        )
