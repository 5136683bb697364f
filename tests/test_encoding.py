"""Temporal encoders (eqs. 5-8) and the TemporalEncoder module (LT / LC / SG switches)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import encoding, neurons

X = jnp.linspace(0.0, 1.999, 97)


def test_threshold_schedule_is_geometric():
    np.testing.assert_allclose(encoding.threshold_schedule(2.0, 0.5, 4), [2.0, 1.0, 0.5, 0.25])
    per_channel = encoding.threshold_schedule(jnp.asarray([1.0, 3.0]), jnp.asarray([0.5, 0.1]), 3)
    np.testing.assert_allclose(per_channel, [[1.0, 3.0], [0.5, 0.3], [0.25, 0.03]], rtol=1e-6)


def test_ttfs_fires_at_most_once_and_earlier_for_larger_inputs():
    s = encoding.ttfs(X, 6)
    assert int(s.sum(0).max()) == 1
    first = jnp.where(s.sum(0) > 0, jnp.argmax(s, axis=0), 6)
    assert bool(jnp.all(jnp.diff(first) <= 0))
    assert int(first[-1]) == 0 and int(first[0]) == 6


def test_phase_spikes_reconstruct_input_within_last_threshold():
    T = 6
    thetas = encoding.threshold_schedule(1.0, 0.5, T)
    s = encoding.phase(X, T)
    recon = jnp.tensordot(thetas, s, axes=1)
    assert bool(jnp.all(recon <= X + 1e-6))
    assert float(jnp.max(X - recon)) < float(thetas[-1])


def test_phase_gives_the_binary_expansion():
    np.testing.assert_array_equal(encoding.phase(jnp.asarray([1.625]), 4)[:, 0], [1, 1, 0, 1])


def test_rate_counts_are_monotone_in_the_input():
    counts = encoding.rate(X, 5).sum(0)
    assert bool(jnp.all(jnp.diff(counts) >= 0))
    assert int(counts[0]) == 0 and int(counts[-1]) == 5


def test_poisson_rate_matches_probability_and_gradient_is_straight_through():
    x = jnp.asarray([-0.5, 0.05, 0.3, 0.8, 1.5])
    s = encoding.poisson(x, 4000, key=jax.random.PRNGKey(0))
    np.testing.assert_allclose(s.mean(0), [0.0, 0.05, 0.3, 0.8, 1.0], atol=0.03)
    g = jax.grad(lambda x: encoding.poisson(x, 8, key=jax.random.PRNGKey(1)).sum())(x)
    np.testing.assert_allclose(g, [0.0, 8.0, 8.0, 8.0, 0.0])
    g_off = jax.grad(lambda x: encoding.poisson(x, 8, key=jax.random.PRNGKey(1), straight_through=False).sum())(x)
    np.testing.assert_array_equal(g_off, jnp.zeros_like(x))


def test_direct_repeats_the_input():
    x = jnp.arange(6.0).reshape(2, 3)
    d = encoding.direct(x, 3)
    chex.assert_shape(d, (3, 2, 3))
    np.testing.assert_array_equal(d[2], x)
    g = jnp.arange(18.0).reshape(3, 2, 3)
    np.testing.assert_array_equal(jax.vjp(lambda x: encoding.direct(x, 3), x)[1](g)[0], g.sum(0))
    backward = jax.jit(lambda g: jax.vjp(lambda x: encoding.direct(x, 3), x)[1](g)).lower(g).compile().as_text()
    assert " reduce(" not in backward  # T − 1 adds of slices (a leading-axis reduce is slow on a CPU)


def _sigmoid_slope(u: np.ndarray, alpha: float = 4.0) -> np.ndarray:
    s = 1.0 / (1.0 + np.exp(-alpha * u))
    return alpha * s * (1.0 - s)


@pytest.mark.parametrize("kind", ["rate", "phase", "ttfs"])
def test_threshold_encoder_gradients_follow_the_chain_rule_step_by_step(kind):
    """dL/dX, dL/dθ_0 and dL/dλ of L = Σ G ⊙ S against the reverse recurrence written out by hand:
    X_{t+1} = f(X_t, S_t, θ_t) with dS_t/dX_t = −dS_t/dθ_t = the sigmoid surrogate's slope."""
    T, rng = 4, np.random.default_rng(0)
    x, g = rng.uniform(0.0, 2.0, (5, 2)), rng.normal(size=(T, 5, 2))
    theta0, lam, t = np.array([1.0, 0.8]), np.array([0.5, 0.7]), np.arange(T)[:, None]
    thetas = theta0 * lam**t
    xs = [x]
    for step in range(T):
        s = (xs[step] >= thetas[step]).astype(float)
        xs.append({"rate": xs[step], "phase": xs[step] - s * thetas[step], "ttfs": xs[step] * (1 - s)}[kind])
    after, d_theta = np.zeros_like(x), np.zeros((T, 2))  # after = dL/dX_{t+1}
    for step in reversed(range(T)):
        s, slope = (xs[step] >= thetas[step]).astype(float), _sigmoid_slope(xs[step] - thetas[step])
        partials = {  # dX_{t+1}/dX_t, dX_{t+1}/dS_t, dX_{t+1}/dθ_t (explicit)
            "rate": (1.0, 0.0, 0.0),
            "phase": (1.0, -thetas[step], -s),
            "ttfs": (1.0 - s, -xs[step], 0.0),
        }[kind]
        d_spike = g[step] + after * partials[1]
        d_theta[step] = (-d_spike * slope + after * partials[2]).sum(0)
        after = after * partials[0] + d_spike * slope
    d_theta0 = (d_theta * lam**t).sum(0)
    d_lam = (d_theta * theta0 * t * lam ** (t - 1.0)).sum(0)

    f = lambda x, th, la: encoding.encode(kind, x, T, threshold=th, threshold_decay=la)
    spikes, vjp = jax.vjp(f, *(jnp.asarray(a, jnp.float32) for a in (x, theta0, lam)))
    np.testing.assert_array_equal(spikes, np.stack([(xs[i] >= thetas[i]) for i in range(T)]))
    for got, want in zip(vjp(jnp.asarray(g, jnp.float32)), (after, d_theta0, d_lam)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["rate", "phase", "ttfs"])
def test_threshold_encoders_without_a_surrogate_pass_no_gradient(kind):
    f = lambda x, th, lam: encoding.encode(kind, x, 4, threshold=th, threshold_decay=lam, surrogate=None).sum()
    args = jnp.asarray([[0.3, 1.2], [0.9, 0.5]]), jnp.asarray([1.0, 0.8]), jnp.asarray([0.5, 0.6])
    for g in jax.grad(f, argnums=(0, 1, 2))(*args):
        np.testing.assert_array_equal(g, jnp.zeros_like(g))


@pytest.mark.parametrize("kind", ["rate", "phase", "ttfs"])
def test_threshold_encoders_compile_without_a_loop_over_time(kind):
    """The T steps are unrolled (a loop was 2-4× slower on a CPU, docs/performance.md §11)."""
    grad = jax.jit(jax.grad(lambda x: encoding.encode(kind, x, 4).sum()))
    assert " while(" not in grad.lower(jnp.ones(3)).compile().as_text()


def test_encoders_compose_with_jit_and_vmap():
    x = jax.random.uniform(jax.random.PRNGKey(0), (3, 4, 5)) * 2
    f = jax.jit(lambda x: encoding.phase(x, 4))
    batched = jax.vmap(f)(x)
    np.testing.assert_array_equal(jnp.moveaxis(batched, 1, 0), f(x))


def test_bad_kind_and_T_raise_named_errors():
    with pytest.raises(
        ValueError, match=r"^encoding: got 'burst'; accepted: 'direct', 'rate', 'poisson', 'phase', 'ttfs'$"
    ):
        encoding.encode("burst", X, 4)
    with pytest.raises(ValueError, match=r"^T: got 0; accepted: an int >= 1 \(the number of time steps\)$"):
        encoding.phase(X, 0)
    with pytest.raises(ValueError, match=r"^key: got None; accepted: a PRNG key "):
        encoding.encode("poisson", X, 4)


IMAGES = jax.random.uniform(jax.random.PRNGKey(3), (2, 6, 6, 3), minval=-1.0, maxval=2.0)


def _init(module, x=IMAGES):
    return module.init({"params": jax.random.PRNGKey(0), "encoding": jax.random.PRNGKey(1)}, x)


def _apply(module, variables, x=IMAGES, train=True):
    out, _ = module.apply(
        variables, x, train=train, rngs={"encoding": jax.random.PRNGKey(2)}, mutable=["batch_stats", "firing_rates"]
    )
    return out


@pytest.mark.parametrize(
    "kind,lc", [(k, lc) for k in encoding.KINDS for lc in (True, False) if (k, lc) != ("direct", False)]
)
def test_module_output_shapes_and_dtypes(kind, lc):
    module = encoding.TemporalEncoder(kind, 3, features=8, learnable_conv=lc)
    out = _apply(module, _init(module))
    chex.assert_shape(out, (3, 2, 6, 6, 8 if lc else 3))
    assert out.dtype == jnp.float32
    assert set(np.unique(np.asarray(out))) <= {0.0, 1.0}


def test_module_bfloat16_compute():
    module = encoding.TemporalEncoder("phase", 2, features=4, dtype=jnp.bfloat16)
    variables = _init(module)
    assert _apply(module, variables).dtype == jnp.bfloat16
    assert variables["params"]["threshold"].dtype == jnp.float32


def test_lc_channels_overrides_the_conv_width():
    module = encoding.TemporalEncoder("ttfs", 2, features=16, lc_channels=3)
    chex.assert_shape(_apply(module, _init(module)), (2, 2, 6, 6, 3))


def test_direct_equals_conv_bn_then_lif():
    module = encoding.TemporalEncoder("direct", 4, features=5)
    variables = _init(module)
    params = variables["params"]
    y = jax.lax.conv_general_dilated(
        IMAGES, params["conv"]["kernel"], (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    mean, var = y.mean((0, 1, 2)), y.var((0, 1, 2))
    feats = (y - mean) / jnp.sqrt(var + 1e-5) * params["bn"]["scale"] + params["bn"]["bias"]
    expected = neurons.lif(jnp.broadcast_to(feats, (4,) + feats.shape))
    np.testing.assert_array_equal(_apply(module, variables), expected)


def test_lt_switch_decides_whether_thresholds_are_parameters_with_gradients():
    on = encoding.TemporalEncoder("phase", 4, features=4, learnable_conv=False)
    off = on.clone(learnable_threshold=False)
    v_on, v_off = _init(on), _init(off)
    assert {"threshold", "threshold_decay_logit"} <= set(v_on["params"])
    assert "params" not in v_off or "threshold" not in v_off["params"]
    grads = jax.grad(lambda p: _apply(on, {**v_on, "params": p}).sum())(v_on["params"])
    assert float(jnp.abs(grads["threshold"]).sum()) > 0
    assert float(jnp.abs(grads["threshold_decay_logit"]).sum()) > 0


@pytest.mark.parametrize("kind", ["rate", "phase", "ttfs", "poisson"])
def test_sg_off_blocks_the_gradient_into_the_lc_conv(kind):
    module = encoding.TemporalEncoder(kind, 3, features=4)
    variables = _init(module)

    def conv_grad(m):
        f = lambda p: _apply(m, {**variables, "params": p}).sum()
        return jnp.abs(jax.grad(f)(variables["params"])["conv"]["kernel"]).sum()

    assert float(conv_grad(module)) > 0
    assert float(conv_grad(module.clone(surrogate_gradient=False))) == 0.0


def test_module_thresholds_start_at_their_init_values():
    module = encoding.TemporalEncoder("ttfs", 2, features=2, threshold_init=0.7, threshold_decay_init=0.25)
    params = _init(module)["params"]
    np.testing.assert_allclose(params["threshold"], [0.7, 0.7])
    np.testing.assert_allclose(jax.nn.sigmoid(params["threshold_decay_logit"]), [0.25, 0.25], rtol=1e-6)


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("kind", "burst", r"^kind: got 'burst'; accepted: 'direct', 'rate', "),
        ("T", 0, r"^T: got 0; accepted: an int >= 1 "),
        ("learnable_conv", False, r"^learnable_conv: got False; accepted: True with the 'direct' encoding "),
        ("neuron", "izh", r"(?m)^neuron: got 'izh'; accepted: 'lif', 'learnable'$"),
        ("threshold_init", 0.0, r"(?m)^threshold_init: got 0\.0; accepted: a finite number > 0$"),
        ("threshold_decay_init", 1.5, r"(?m)^threshold_decay_init: got 1\.5; accepted: a finite number in \(0, 1\)$"),
    ],
)
def test_module_rejects_bad_configuration(field, value, match):
    kwargs = {"kind": "direct", "T": 2, "features": 4, field: value}
    with pytest.raises(ValueError, match=match):
        _init(encoding.TemporalEncoder(**kwargs))


def test_module_rejects_non_image_input():
    with pytest.raises(ValueError, match=r"(?m)^x: got \(2, 6, 6\); accepted: images \[B, H, W, C\]$"):
        _init(encoding.TemporalEncoder("phase", 2), jnp.ones((2, 6, 6)))


def test_lc_conv_geometry_and_bn_settings_are_configurable():
    module = encoding.TemporalEncoder(
        "phase",
        2,
        features=4,
        lc_kernel_size=(6, 6),
        lc_strides=(2, 2),
        lc_padding=2,
        bn_momentum=0.97,
        bn_epsilon=1e-3,
    )
    variables = _init(module)
    assert variables["params"]["conv"]["kernel"].shape == (6, 6, 3, 4)
    _, state = module.apply(
        variables, IMAGES, train=True, rngs={"encoding": jax.random.PRNGKey(2)}, mutable=["batch_stats", "firing_rates"]
    )
    chex.assert_shape(_apply(module, variables), (2, 2, 3, 3, 4))
    y = jax.lax.conv_general_dilated(
        IMAGES,
        variables["params"]["conv"]["kernel"],
        (2, 2),
        ((2, 2), (2, 2)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    np.testing.assert_allclose(state["batch_stats"]["bn"]["mean"], 0.03 * y.mean((0, 1, 2)), rtol=1e-4, atol=1e-6)
