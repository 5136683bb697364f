"""snnjax.record.record_spikes: every spiking layer's spikes and membrane potential, the model unchanged."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.encoding import TemporalEncoder
from snnjax.metrics.spikes import firing_rates
from snnjax.models.qkformer import MergedTimeBatchLIF
from snnjax.neurons import LIF, LearnableLIF, lif
from snnjax.record import record_spikes

X = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3))


class Network(nn.Module):
    """Every kind of spiking layer: a TTFS encoder, a LIF, a learnable LIF, QKFormer's T·B-scanned LIF."""

    @nn.compact
    def __call__(self, x):
        s = TemporalEncoder("ttfs", T=2, features=4, name="encoder")(x)
        s = LIF(name="lif")(nn.Dense(6)(s) * 2.0)
        s = LearnableLIF(name="block/learnable")(nn.Dense(6)(s) * 2.0)
        return MergedTimeBatchLIF(name="merged")(nn.Dense(5)(s) * 2.0)


@pytest.fixture(scope="module")
def network():
    model = Network()
    return model, model.init(jax.random.key(1), X)


record = jax.jit(record_spikes, static_argnums=0, static_argnames="membrane")


def test_every_spiking_layer_is_recorded_and_the_output_is_unchanged(network):
    model, variables = network
    plain, state = model.apply(variables, X, mutable=["firing_rates"])
    recording = record_spikes(model, variables, X)
    np.testing.assert_array_equal(recording.output, plain)
    rates = firing_rates(state["firing_rates"])
    assert set(recording.spikes) == set(rates) and recording.membrane == {}
    for name, spikes in recording.spikes.items():
        assert spikes.shape[:2] == (2, 2), name  # [T, B, ...]
        assert set(np.unique(spikes)) <= {0.0, 1.0}, name
        np.testing.assert_allclose(np.mean(spikes), rates[name], rtol=1e-6, err_msg=name)
    assert list(recording.spikes) == ["encoder", "lif", "block/learnable", "merged"]  # in call order


@pytest.mark.parametrize("kind, recorded", [("ttfs", "encoder"), ("direct", "encoder/lif")])
def test_the_encoders_spikes_are_recorded(kind, recorded):
    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            return TemporalEncoder(kind, T=3, features=4, name="encoder")(x)

    variables = Model().init(jax.random.key(0), X)
    recording = record_spikes(Model(), variables, X)
    assert list(recording.spikes) == [recorded]
    np.testing.assert_array_equal(recording.spikes[recorded], recording.output)


def test_init_and_an_ordinary_apply_record_nothing():
    neuron = LIF()
    x = jnp.ones((2, 1, 3))
    assert set(neuron.init(jax.random.key(0), x)) == {"firing_rates"}
    assert set(neuron.apply({}, x, mutable=["firing_rates"])[1]) == {"firing_rates"}


def test_membrane_is_the_neurons_post_reset_potential():
    x = jax.random.normal(jax.random.key(2), (4, 3, 5))
    for neuron in (LIF(tau=2.0), LearnableLIF(tau=2.0)):
        variables = neuron.init(jax.random.key(0), x)
        recording = record_spikes(neuron, variables, x, membrane=True)
        spikes, v = lif(x, tau=2.0, return_v=True)  # the learnable LIF starts as the standard one
        np.testing.assert_array_equal(recording.spikes[""], spikes)
        np.testing.assert_allclose(recording.membrane[""], v, atol=1e-6)


def test_membrane_of_every_neuron_in_a_model_and_under_jit(network):
    model, variables = network
    recording = record(model, variables, X, membrane=True)
    neurons = {name for name in recording.spikes if name != "encoder"}  # a TTFS encoder has no membrane
    assert set(recording.membrane) == neurons
    for name, v in recording.membrane.items():
        assert v.shape == recording.spikes[name].shape, name
        # where a neuron fired (hard reset to 0), its post-reset potential is the reset value
        assert np.all(np.where(recording.spikes[name] > 0, v, 0.0) == 0.0), name


def test_a_layer_called_twice_is_recorded_per_call():
    class Twice(LIF):
        def __call__(self, x):
            return super().__call__(super().__call__(x) + x)

    x = jnp.full((3, 1, 2), 1.5)
    recording = record_spikes(Twice(), {}, x)
    assert set(recording.spikes) == {"[0]", "[1]"}
