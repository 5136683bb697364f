"""LIF and learnable LIF: against an independent loop reference, closed forms and finite differences."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import neurons
from snnjax.surrogate import ATan, Sigmoid

SETTINGS = list(itertools.product([None, 0.0, -0.3], [True, False], [True, False]))


def reference_lif(x, tau, v_th, v_reset, decay_input, detach_reset, alpha=4.0):
    """Python loop over time; Θ with a sigmoid straight-through estimator instead of custom_vjp."""
    vr = 0.0 if v_reset is None else v_reset
    v = jnp.full(x.shape[1:], vr)
    spikes, vs = [], []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - vr)) / tau if decay_input else v - (v - vr) / tau + x[t]
        smooth = jax.nn.sigmoid(alpha * (h - v_th))
        s = jax.lax.stop_gradient((h >= v_th).astype(x.dtype) - smooth) + smooth
        sd = jax.lax.stop_gradient(s) if detach_reset else s
        v = h - sd * v_th if v_reset is None else sd * v_reset + (1 - sd) * h
        spikes.append(s)
        vs.append(v)
    return jnp.stack(spikes), jnp.stack(vs)


@pytest.fixture
def x():
    return jax.random.uniform(jax.random.PRNGKey(0), (6, 3, 4), minval=-0.5, maxval=2.5)


@pytest.mark.parametrize("v_reset,decay_input,detach_reset", SETTINGS)
def test_lif_matches_loop_reference_values_and_gradients(x, v_reset, decay_input, detach_reset):
    kw = dict(tau=2.5, v_threshold=0.9, v_reset=v_reset, decay_input=decay_input)
    s, v = neurons.lif(x, detach_reset=detach_reset, surrogate=Sigmoid(), return_v=True, **kw)
    s_ref, v_ref = reference_lif(x, 2.5, 0.9, v_reset, decay_input, detach_reset)
    np.testing.assert_array_equal(s, s_ref)
    chex.assert_trees_all_close(v, v_ref, atol=1e-6)
    weights = jax.random.normal(jax.random.PRNGKey(1), (2,) + x.shape)

    def loss(fn):
        return lambda x: jnp.sum(fn(x)[0] * weights[0] + fn(x)[1] * weights[1])

    g = jax.grad(loss(lambda x: neurons.lif(x, detach_reset=detach_reset, return_v=True, **kw)))(x)
    g_ref = jax.grad(loss(lambda x: reference_lif(x, 2.5, 0.9, v_reset, decay_input, detach_reset)))(x)
    chex.assert_trees_all_close(g, g_ref, atol=1e-5)


def test_constant_input_soft_reset_closed_form():
    """τ=2, V_th=1, soft reset, x=1.5: H1=0.75, H2=1.125 fires → V=0.125, H3=0.8125, H4=1.15625 fires."""
    s, v = neurons.lif(jnp.full((4, 1), 1.5), v_reset=None, return_v=True)
    np.testing.assert_array_equal(s[:, 0], [0, 1, 0, 1])
    np.testing.assert_allclose(v[:, 0], [0.75, 0.125, 0.8125, 0.15625], rtol=1e-6)


def test_hard_reset_returns_to_v_reset_after_a_spike():
    s, v = neurons.lif(jnp.full((3, 1), 5.0), v_reset=-0.2, return_v=True)
    np.testing.assert_array_equal(s[:, 0], [1, 1, 1])
    np.testing.assert_allclose(v[:, 0], [-0.2, -0.2, -0.2])


def test_membrane_gradient_matches_finite_differences_without_surrogate(x):
    """With no surrogate, V is piecewise linear in x; away from thresholds FD is exact."""
    f = lambda x: jnp.sum(neurons.lif(x, v_reset=None, surrogate=None, return_v=True)[1] ** 2)
    g = jax.grad(f)(x)
    eps = 1e-3
    for idx in [(0, 0, 0), (2, 1, 3), (5, 2, 1), (3, 0, 2)]:
        d = jnp.zeros_like(x).at[idx].set(eps)
        if not jnp.array_equal(neurons.lif(x + d, v_reset=None), neurons.lif(x - d, v_reset=None)):
            continue
        fd = (f(x + d) - f(x - d)) / (2 * eps)
        np.testing.assert_allclose(g[idx], fd, rtol=2e-2, atol=1e-3)


def test_lif_works_on_any_shape_under_jit_and_vmap():
    x = jnp.ones((4, 2, 3, 5, 6))
    f = jax.jit(lambda x: neurons.lif(x, v_reset=None))
    chex.assert_shape(f(x), x.shape)
    batched = jax.vmap(lambda xi: neurons.lif(xi), in_axes=1, out_axes=1)(x)
    np.testing.assert_array_equal(batched, neurons.lif(x))


def test_bfloat16_input_keeps_dtype():
    x = jnp.full((4, 3), 1.5, jnp.bfloat16)
    s, v = neurons.lif(x, return_v=True)
    assert s.dtype == v.dtype == jnp.bfloat16
    g = jax.grad(lambda x: neurons.lif(x, surrogate=ATan()).astype(jnp.float32).sum())(x)
    assert g.dtype == jnp.bfloat16 and float(jnp.abs(g.astype(jnp.float32)).sum()) > 0


@pytest.mark.parametrize("v_reset", [None, 0.0])
def test_learnable_lif_with_standard_parameters_equals_lif(x, v_reset):
    T, C = x.shape[0], x.shape[-1]
    k, w = jnp.full((T, C), 1 - 1 / 2.0), jnp.full((T, C), 1 / 2.0)
    s, v = neurons.learnable_lif(x, k, w, v_reset=v_reset, return_v=True)
    s_ref, v_ref = neurons.lif(x, tau=2.0, v_reset=v_reset, return_v=True)
    np.testing.assert_array_equal(s, s_ref)
    chex.assert_trees_all_close(v, v_ref, atol=1e-6)


def test_learnable_lif_uses_per_step_per_channel_parameters():
    x = jnp.ones((2, 1, 2))
    k = jnp.asarray([[0.0, 0.0], [1.0, 0.0]])
    w = jnp.asarray([[0.6, 2.0], [0.6, 0.1]])
    s, v = neurons.learnable_lif(x, k, w, v_reset=None, return_v=True)
    # channel 0: H=0.6, then H=1·0.6+0.6=1.2 fires → V=0.2; channel 1: H=2 fires → V=1, then H=0.1.
    np.testing.assert_array_equal(s[:, 0], [[0, 1], [1, 0]])
    np.testing.assert_allclose(v[:, 0], [[0.6, 1.0], [0.2, 0.1]], rtol=1e-6)


def test_learnable_lif_parameter_gradients_match_closed_form():
    """Two steps without spikes (reset detached): V2 = k2·w1·x1 + w2·x2, so dV2/dk2 = w1·x1, dV2/dw2 = x2."""
    x = jnp.asarray([[0.2], [0.3]])
    k, w = jnp.asarray([[0.5], [0.4]]), jnp.asarray([[0.7], [0.9]])
    f = lambda k, w: neurons.learnable_lif(x, k, w, detach_reset=True, return_v=True)[1][-1, 0]
    gk, gw = jax.grad(f, argnums=(0, 1))(k, w)
    np.testing.assert_allclose(gk[:, 0], [0.0, 0.7 * 0.2], rtol=1e-6)
    np.testing.assert_allclose(gw[:, 0], [0.4 * 0.2, 0.3], rtol=1e-6)


def test_learnable_module_at_init_equals_lif_module_and_its_params_get_gradients(x):
    x = x[..., None] * jnp.ones(5)  # [T, 3, 4, 5], C = 5
    learnable, standard = neurons.LearnableLIF(detach_reset=True), neurons.LIF(detach_reset=True)
    variables = learnable.init(jax.random.PRNGKey(0), x)
    np.testing.assert_array_equal(learnable.apply(variables, x), standard.apply({}, x))
    chex.assert_shape([variables["params"]["decay"], variables["params"]["weight"]], (x.shape[0], 5))
    grads = jax.grad(lambda p: jnp.sum(learnable.apply({"params": p}, x) * x))(variables["params"])
    assert float(jnp.abs(grads["decay"]).sum()) > 0 and float(jnp.abs(grads["weight"]).sum()) > 0


def test_modules_sow_the_firing_rate_of_each_example():
    x = jnp.concatenate([jnp.full((4, 1, 3), 5.0), jnp.zeros((4, 1, 3))], axis=1)  # [T, B=2, C]
    for module in (neurons.LIF(), neurons.LearnableLIF()):
        variables = module.init(jax.random.PRNGKey(0), x)
        _, state = module.apply({"params": variables.get("params", {})}, x, mutable=["firing_rates"])
        np.testing.assert_allclose(state["firing_rates"]["rate"][0], [1.0, 0.0])


def test_make_neuron_builds_either_neuron_and_names_a_bad_kind():
    assert isinstance(neurons.make_neuron("learnable", tau=3.0), neurons.LearnableLIF)
    with pytest.raises(ValueError, match=r"^neuron: got 'izhikevich'; accepted: 'lif', 'learnable'$"):
        neurons.make_neuron("izhikevich")
    with pytest.raises(ValueError, match=r"^tau: got 1\.0; accepted: a number > 1 "):
        neurons.lif(jnp.ones((2, 2)), tau=1.0)
    with pytest.raises(ValueError, match=r"^x: got \(\); accepted: a time-major array \[T, \.\.\.\] with T >= 1$"):
        neurons.lif(jnp.float32(1.0))
    with pytest.raises(ValueError, match=r"^decay: got \(2, 2\); accepted: an array \[T=3, C\]$"):
        neurons.learnable_lif(jnp.ones((3, 2)), jnp.ones((2, 2)), jnp.ones((3, 2)))


@pytest.mark.parametrize("unroll", [1, 3, None])
def test_unroll_changes_neither_spikes_nor_gradients(unroll):
    x = jax.random.normal(jax.random.key(3), (5, 4, 3)) * 2
    decay, weight = jnp.full((5, 3), 0.4), jnp.full((5, 3), 0.6)

    def loss(x, decay, weight, unroll):
        a = neurons.lif(x, v_reset=None, unroll=unroll)
        b = neurons.learnable_lif(x, decay, weight, unroll=unroll)
        return jnp.sum(a * jnp.arange(5.0)[:, None, None]) + jnp.sum(b**2), (a, b)

    (value, spikes), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(x, decay, weight, unroll)
    (ref_value, ref_spikes), ref_grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(x, decay, weight, 5)
    chex.assert_trees_all_equal(spikes, ref_spikes)
    chex.assert_trees_all_close(grads, ref_grads, rtol=1e-6, atol=1e-6)
    module = neurons.LearnableLIF(unroll=unroll)
    variables = module.init(jax.random.key(0), x)
    params = variables["params"]
    expected = neurons.learnable_lif(x, params["decay"], params["weight"], unroll=5)
    np.testing.assert_array_equal(module.apply(variables, x, mutable=["firing_rates"])[0], expected)


@pytest.mark.parametrize(
    "v_reset, dtype, unroll", [(0.0, jnp.float32, 2), (None, jnp.float32, None), (0.0, jnp.bfloat16, None)]
)
def test_the_recomputing_backward_equals_autodiff_of_the_scan(monkeypatch, v_reset, dtype, unroll):
    """The LIF's custom_vjp (recompute V, then per-step VJPs in reverse) against plain autodiff of the same
    scan: input, decay and weight gradients, through spikes and the membrane output alike."""
    x = (jax.random.normal(jax.random.key(5), (4, 3, 2)) * 2).astype(dtype)
    decay, weight = jnp.asarray([[0.3, 0.9]] * 4), jnp.asarray([[0.7, 1.1]] * 4)
    cotangents = jax.random.normal(jax.random.key(6), (2, 4, 3, 2))

    def loss(x, decay, weight):
        s, v = neurons.learnable_lif(x, decay, weight, v_reset=v_reset, return_v=True, unroll=unroll)
        return jnp.sum(s * cotangents[0]) + jnp.sum(v * cotangents[1])

    grads = jax.grad(loss, argnums=(0, 1, 2))(x, decay, weight)
    monkeypatch.setattr(neurons, "_recomputing_scan", lambda step, unroll, v0, xs: jax.lax.scan(step, v0, xs)[1])
    tolerance = 1e-6 if dtype == jnp.float32 else 1e-2
    want = jax.grad(loss, argnums=(0, 1, 2))(x, decay, weight)
    chex.assert_trees_all_close(grads, want, rtol=tolerance, atol=tolerance)
    assert grads[0].dtype == dtype and float(jnp.abs(grads[1]).sum()) > 0


def test_a_bad_unroll_is_named():
    with pytest.raises(ValueError, match="unroll: got 0; accepted: an integer >= 1, or None"):
        neurons.lif(jnp.ones((2, 3)), unroll=0)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU's choice of loops")
@pytest.mark.parametrize("unroll, loops", [(None, 1), (4, 0), (1, 2)])
def test_on_a_cpu_the_default_backward_pass_loops_over_time_and_the_forward_pass_is_unrolled(unroll, loops):
    """unroll=None: the reverse scan is XLA's only loop (one step per iteration, docs/performance.md §10);
    an explicit unroll applies to every scan (unroll=1: the recomputation of V and the reverse scan)."""
    x = jnp.ones((4, 8))
    forward = jax.jit(lambda x: neurons.lif(x, unroll=unroll)).lower(x).compile().as_text()
    backward = jax.jit(jax.grad(lambda x: neurons.lif(x, unroll=unroll).sum())).lower(x).compile().as_text()
    assert forward.count(" while(") == int(unroll == 1)
    assert backward.count(" while(") == loops
