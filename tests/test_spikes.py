"""Per-layer firing rates and the time-shuffling test (paper, Appendix B)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.layers import fold_time, unfold_time
from snnjax.metrics.spikes import firing_rates, shuffle_time, shuffle_time_interceptor
from snnjax.neurons import LIF, LearnableLIF


def _spikes(shape, key=0):
    return (jax.random.uniform(jax.random.key(key), shape) < 0.4).astype(jnp.float32)


def test_shuffle_time_keeps_every_neurons_spike_count():
    s = _spikes((4, 8, 5, 5, 6))
    shuffled = shuffle_time(s, jax.random.key(1))
    np.testing.assert_array_equal(shuffled.sum(0), s.sum(0))
    assert shuffled.shape == s.shape and set(np.unique(shuffled)) <= {0.0, 1.0}


def test_shuffle_time_permutes_each_neuron_independently():
    s = jnp.broadcast_to(jnp.array([1.0, 0.0, 0.0, 0.0])[:, None], (4, 4000))
    shuffled = np.asarray(shuffle_time(s, jax.random.key(2)))
    first_spike = shuffled.argmax(0)
    assert not np.array_equal(shuffled, s)
    np.testing.assert_allclose(np.bincount(first_spike, minlength=4) / 4000, 0.25, atol=0.03)


class _Net(nn.Module):
    """Two neuron layers and a non-neuron op, one of them scanned over the merged T·B axis."""

    @nn.compact
    def __call__(self, x):
        a = LIF(v_threshold=0.5, name="lif")(x)
        b = LearnableLIF(v_threshold=0.5, name="learnable")(a * 3.0)
        merged = unfold_time(LIF(v_threshold=0.5, name="merged")(fold_time(b * 3.0)), x.shape[0])
        return a, b, merged


def test_interceptor_shuffles_every_neuron_output_and_keeps_counts():
    x = jax.random.uniform(jax.random.key(3), (4, 2, 64, 3)) * 2.0
    net = _Net()
    variables = net.init(jax.random.key(0), x)
    a, b, merged = net.apply(variables, x)
    with nn.intercept_methods(shuffle_time_interceptor(jax.random.key(4), T=4)):
        (sa, sb, sm), rates = net.apply(variables, x, mutable=["firing_rates"])
    np.testing.assert_array_equal(sa.sum(0), a.sum(0))
    assert not np.array_equal(sa, a)
    assert not np.array_equal(sb, b)  # b sees shuffled input and is shuffled again
    np.testing.assert_array_equal(
        sm.sum(0), np.asarray(LIF(v_threshold=0.5).apply({}, fold_time(sb * 3.0))).reshape(sm.shape).sum(0)
    )
    assert set(firing_rates(rates["firing_rates"])) == {"lif", "learnable", "merged"}


def test_firing_rates_are_named_by_module_path_and_averaged_over_calls():
    collection = {
        "stage1": {"q_lif": {"rate": (jnp.float32(0.2), jnp.float32(0.4))}},
        "encoder": {"rate": (jnp.float32(0.5),)},
    }
    rates = firing_rates(collection)
    assert rates.keys() == {"stage1/q_lif", "encoder"}
    assert float(rates["stage1/q_lif"]) == pytest.approx(0.3)
    assert float(rates["encoder"]) == pytest.approx(0.5)


def test_weights_average_the_rates_over_the_real_examples_only():
    collection = {"lif": {"rate": (jnp.array([0.2, 0.6, 0.9]), jnp.array([0.4, 0.2, 0.9]))}}
    real = jnp.array([1.0, 1.0, 0.0])  # the third row pads the batch
    assert float(firing_rates(collection, real)["lif"]) == pytest.approx((0.2 + 0.6 + 0.4 + 0.2) / 4)
    assert float(firing_rates(collection)["lif"]) == pytest.approx((0.2 + 0.6 + 0.9 + 0.4 + 0.2 + 0.9) / 6)
    with pytest.raises(ValueError, match=r"^firing_rates\['lif'\]: got \(3,\); accepted: one rate per example \(2,\)"):
        firing_rates(collection, jnp.ones(2))
