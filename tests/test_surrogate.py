"""Spike function: exact 0/1 forward, closed-form surrogate derivatives, transformations, dtypes."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

from snnjax import surrogate as sg

X = np.linspace(-3.0, 3.0, 601, dtype=np.float32)
ALPHA = 1.7


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# Closed forms written independently of the library (numpy, float64).
CLOSED_FORMS = {
    "sigmoid": lambda x, a: a * _sigmoid(a * x) * (1 - _sigmoid(a * x)),
    "atan": lambda x, a: (a / 2) / (1 + (math.pi / 2 * a * x) ** 2),
    "piecewise_quadratic": lambda x, a: np.where(np.abs(x) <= 1 / a, a - a**2 * np.abs(x), 0.0),
    "piecewise_exp": lambda x, a: a / 2 * np.exp(-a * np.abs(x)),
    "erf": lambda x, a: a / math.sqrt(math.pi) * np.exp(-((a * x) ** 2)),
    "rect": lambda x, a: np.where(np.abs(x) < 1 / (2 * a), a, 0.0),
    "triangle": lambda x, a: a * np.maximum(1 - np.abs(x), 0.0),
    "superspike": lambda x, a: a / (np.abs(x) + 1) ** 2,
}

DEFAULT_ALPHAS = {
    "sigmoid": 4.0,
    "atan": 2.0,
    "piecewise_quadratic": 1.0,
    "piecewise_exp": 1.0,
    "erf": 2.0,
    "rect": 1.0,
    "triangle": 1.0,
    "superspike": 1.0,
}


def test_every_named_surrogate_has_a_closed_form_here():
    assert set(CLOSED_FORMS) == set(sg.SURROGATES)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_default_alpha_matches_spikingjelly(name):
    assert sg.get(name).alpha == DEFAULT_ALPHAS[name]


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_gradient_equals_closed_form(name):
    surrogate = sg.get(name, alpha=ALPHA)
    grad = jax.vmap(jax.grad(lambda x: sg.spike(x, surrogate)))(jnp.asarray(X))
    chex.assert_trees_all_close(
        np.asarray(grad), CLOSED_FORMS[name](X.astype(np.float64), ALPHA).astype(np.float32), atol=1e-6, rtol=1e-5
    )


def test_sigmoid_slope_integrates_to_one():
    """A surrogate is the derivative of a smooth step: its integral over the line is 1."""
    x = np.linspace(-20, 20, 400001)
    slope = np.asarray(sg.Sigmoid().derivative(jnp.asarray(x, jnp.float32)))
    assert abs(np.trapezoid(slope, x) - 1.0) < 1e-4


def test_erf_matches_scipy_derivative_by_finite_differences():
    a, h = 2.0, 1e-4
    x = np.linspace(-2, 2, 41)
    fd = (0.5 * (1 + special.erf(a * (x + h))) - 0.5 * (1 + special.erf(a * (x - h)))) / (2 * h)
    np.testing.assert_allclose(np.asarray(sg.Erf().derivative(jnp.asarray(x, jnp.float32))), fd, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS) + ["none"])
def test_forward_is_exactly_heaviside_firing_at_zero(name):
    out = sg.spike(jnp.asarray(X), name)
    np.testing.assert_array_equal(np.asarray(out), (X >= 0).astype(np.float32))
    assert sg.spike(jnp.float32(0.0), name) == 1.0


def test_no_surrogate_gives_exactly_zero_gradient():
    for s in (None, "none"):
        grad = jax.grad(lambda x, s=s: jnp.sum(sg.spike(x, s) * 3.0))(jnp.asarray(X))
        np.testing.assert_array_equal(np.asarray(grad), np.zeros_like(X))


def test_get_resolves_instances_names_and_rejects_bad_input():
    assert sg.get(sg.ATan(alpha=3.0)) == sg.ATan(alpha=3.0)
    assert sg.get("ATan") == sg.ATan()
    assert sg.get(None) is None
    with pytest.raises(ValueError, match=r"^surrogate: got 'relu'; accepted: None, 'none', 'sigmoid', 'atan', "):
        sg.get("relu")
    with pytest.raises(ValueError, match=r"^surrogate: got 3\.0; accepted: None, 'none', .* or an instance "):
        sg.get(3.0)
    with pytest.raises(ValueError, match=r"^alpha: got 2\.0; accepted: None unless surrogate is given by name "):
        sg.get(sg.ATan(), alpha=2.0)


def test_surrogates_are_hashable_static_arguments():
    f = jax.jit(sg.spike, static_argnums=1)
    np.testing.assert_array_equal(f(jnp.asarray([-1.0, 1.0]), sg.Sigmoid(alpha=2.0)), [0.0, 1.0])
    assert hash(sg.Sigmoid()) == hash(sg.Sigmoid(alpha=4.0))


def test_jit_vmap_grad_and_scan_compose():
    s = sg.Sigmoid()

    def f(x):
        def step(c, xt):
            y = sg.spike(xt + c, s)
            return c + 0.1 * y, y

        return jnp.sum(jax.lax.scan(step, 0.0, x)[1])

    xs = jax.random.normal(jax.random.PRNGKey(0), (3, 5))
    g = jax.jit(jax.vmap(jax.grad(f)))(xs)
    chex.assert_shape(g, (3, 5))
    chex.assert_tree_all_finite(g)
    assert float(jnp.abs(g).sum()) > 0


def test_bfloat16_forward_and_gradient_keep_dtype():
    x = jnp.asarray([-0.5, 0.0, 0.25], jnp.bfloat16)
    y, vjp = jax.vjp(lambda v: sg.spike(v, "atan"), x)
    (g,) = vjp(jnp.ones_like(y))
    assert y.dtype == jnp.bfloat16 and g.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(g, np.float32), CLOSED_FORMS["atan"](np.asarray(x, np.float64), 2.0), rtol=1e-2
    )
