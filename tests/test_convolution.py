import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from snnjax import convolution

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
def test_values_and_gradients_are_lax_convolutions(monkeypatch, kernel, strides, padding, settings):
    """Every form (matmul, chunked weight gradient, passed on) against lax's, with the weight gradient summed
    over one-example chunks."""
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)
    x = jax.random.normal(jax.random.key(0), (3, 5, 6, 3))
    groups = settings.get("feature_group_count", 1)
    w = jax.random.normal(jax.random.key(1), (*kernel, 3 // groups, 6))
    ours = jax.jit(_loss(convolution.conv_general_dilated, strides, padding, dimension_numbers=NHWC, **settings))
    want = _loss(jax.lax.conv_general_dilated, strides, padding, dimension_numbers=NHWC, **settings)
    np.testing.assert_allclose(ours(x, w), want(x, w), rtol=1e-5)
    chex.assert_trees_all_close(
        jax.grad(ours, argnums=(0, 1))(x, w), jax.grad(want, argnums=(0, 1))(x, w), rtol=1e-5, atol=1e-5
    )


def test_lax_default_layout_is_passed_on():
    """Without dimension numbers lax means NCHW/OIHW; so does this function."""
    x, w = jax.random.normal(jax.random.key(4), (2, 3, 5, 5)), jax.random.normal(jax.random.key(5), (4, 3, 1, 1))
    ours = _loss(convolution.conv_general_dilated, (1, 1), "SAME")
    want = _loss(jax.lax.conv_general_dilated, (1, 1), "SAME")
    chex.assert_trees_all_close(jax.grad(ours, argnums=(0, 1))(x, w), jax.grad(want, argnums=(0, 1))(x, w))


def test_the_weight_gradient_sums_chunks_on_the_cpu_and_not_elsewhere(monkeypatch):
    """With 2-example chunks of a batch of 5: forward, input gradient and 3 chunks on a one-device CPU;
    three convolutions (XLA's own weight gradient) lowered for a GPU or with several devices. 1×1 kernels
    run as matmuls."""
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 2 * 4 * 4 * 2 * 4)
    x, w = jnp.ones((5, 4, 4, 3)), jnp.ones((3, 3, 3, 2))
    loss = _loss(convolution.conv_general_dilated, (1, 1), "SAME", dimension_numbers=NHWC)

    def convolutions(platform, w):
        grad = jax.jit(jax.grad(lambda x, w: loss(x, w), argnums=(0, 1)))  # a new function: traced anew
        module = jax.export.export(grad, platforms=[platform])(x, w).mlir_module()
        return module.count("stablehlo.convolution")

    monkeypatch.setattr(jax, "device_count", lambda: 1)
    assert convolutions("cpu", w) == 2 + 3
    assert convolutions("cuda", w) == 3
    assert convolutions("cpu", jnp.ones((1, 1, 3, 2))) == 0
    monkeypatch.setattr(jax, "device_count", lambda: 2)  # a batch split over devices is not chunked
    assert convolutions("cpu", w) == 3


def test_batch_chunks_hold_at_most_the_bytes_asked_and_one_example_at_least():
    g = jnp.zeros((7, 2, 2, 4))  # 64 bytes per example
    assert convolution.batch_chunks(g, 64 * 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    assert convolution.batch_chunks(g, 10) == [slice(i, i + 1) for i in range(7)]
    assert convolution.batch_chunks(g, 64 * 7) == [slice(0, 7)]


def test_chunked_weight_gradient_matches_finite_differences_and_keeps_bfloat16(monkeypatch):
    x = jax.random.normal(jax.random.key(2), (4, 5, 5, 2))
    w = jax.random.normal(jax.random.key(3), (3, 3, 2, 3))
    settings = ((1, 1), ((1, 1), (1, 1)), None, None)

    def chunked(x, w):
        y = convolution.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=NHWC)
        return convolution.chunked_weight_gradient(x, w, jnp.cos(y), settings, chunk_bytes=1)

    def exact(x, w):
        return jax.grad(
            lambda w: jnp.sum(jnp.sin(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)))
        )(w)

    np.testing.assert_allclose(chunked(x, w), exact(x, w), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(convolution, "CHUNK_BYTES", 1)  # the model path, in one-example chunks
    check_grads(
        _loss(convolution.conv_general_dilated, (1, 1), "SAME", dimension_numbers=NHWC), (x, w), 1, modes=["rev"]
    )
    ones = jnp.ones((4, 5, 5, 3), jnp.bfloat16)
    low = convolution.chunked_weight_gradient(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), ones, settings, 1)
    want = jax.grad(lambda w: jnp.sum(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=NHWC)))(w)
    assert low.dtype == jnp.bfloat16
    np.testing.assert_allclose(low.astype(jnp.float32), want, rtol=2e-2, atol=5e-2)
