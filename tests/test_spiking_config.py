"""SpikingConfig: validation, the neuron and encoder it builds, and JSON round trips."""

import dataclasses
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.encoding import TemporalEncoder
from snnjax.models.spiking import SpikingConfig
from snnjax.neurons import lif
from snnjax.surrogate import ATan, Sigmoid


def test_defaults_are_the_official_qkformer_settings():
    config = SpikingConfig()
    assert (config.T, config.encoding, config.neuron, config.tau, config.v_reset) == (4, "direct", "lif", 2.0, 0.0)
    assert config.learnable_threshold and config.learnable_conv and config.surrogate_gradient and config.detach_reset
    config.validate()


@pytest.mark.parametrize(
    "field,value",
    [
        ("T", 0),
        ("T", 2.0),
        ("encoding", "delta"),
        ("learnable_threshold", 1),
        ("lc_channels", 0),
        ("neuron", "izh"),
        ("tau", 1.0),
        ("tau", True),
        ("v_reset", "zero"),
        ("detach_reset", None),
        ("surrogate", "nope"),
        ("bn_scale", 0.0),
        ("bn_scale", "2"),
    ],
)
def test_validate_names_the_bad_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: got"):
        SpikingConfig(**{field: value}).validate()


def test_direct_encoding_needs_the_learnable_conv():
    with pytest.raises(ValueError, match="learnable_conv: got False"):
        SpikingConfig(encoding="direct", learnable_conv=False).validate()
    SpikingConfig(encoding="rate", learnable_conv=False).validate()


def test_neuron_kwargs_resolve_the_surrogate_by_name_or_instance():
    assert SpikingConfig(surrogate="atan").neuron_kwargs(0.5) == dict(
        tau=2.0, v_threshold=0.5, v_reset=0.0, detach_reset=True, surrogate=ATan(), unroll=None
    )
    assert SpikingConfig(surrogate=Sigmoid(2.0)).neuron_kwargs()["surrogate"] == Sigmoid(2.0)
    assert SpikingConfig(surrogate="none").neuron_kwargs()["surrogate"] is None


@pytest.mark.parametrize("neuron,params", [("lif", set()), ("learnable", {"decay", "weight"})])
def test_spikes_builds_the_configured_neuron(neuron, params):
    config = SpikingConfig(neuron=neuron, tau=3.0, v_reset=None)

    class Wrapper(nn.Module):
        @nn.compact
        def __call__(self, x):
            return config.spikes(x, "cell", v_threshold=0.7)

    x = jax.random.uniform(jax.random.key(0), (3, 2, 5), maxval=2.0)
    spikes, variables = Wrapper().init_with_output(jax.random.key(1), x)
    assert set(variables.get("params", {}).get("cell", {})) == params
    expected = lif(x, tau=3.0, v_threshold=0.7, v_reset=None, detach_reset=True)
    np.testing.assert_array_equal(spikes, expected)  # the learnable LIF starts as the LIF


def test_encoder_carries_every_setting():
    config = SpikingConfig(
        T=3,
        encoding="ttfs",
        learnable_threshold=False,
        surrogate_gradient=False,
        lc_channels=5,
        neuron="learnable",
        surrogate="atan",
        bn_scale=2.0,
    )
    encoder = config.encoder(16, jnp.bfloat16, name="stem", lc_strides=(2, 2))
    assert isinstance(encoder, TemporalEncoder)
    assert (encoder.kind, encoder.T, encoder.features, encoder.lc_channels, encoder.lc_strides) == (
        "ttfs",
        3,
        16,
        5,
        (2, 2),
    )
    assert (encoder.learnable_threshold, encoder.surrogate_gradient, encoder.neuron) == (False, False, "learnable")
    assert (encoder.surrogate, encoder.dtype, encoder.name) == (ATan(), jnp.bfloat16, "stem")
    assert encoder.neuron_kwargs == config.neuron_kwargs()


def test_bn_scale_leaves_the_encoders_batchnorm_at_one():
    encoder = SpikingConfig(T=2, encoding="phase", bn_scale=2.0).encoder(4)
    variables = encoder.init({"params": jax.random.key(0), "encoding": jax.random.key(1)}, jnp.ones((1, 8, 8, 3)))
    np.testing.assert_array_equal(variables["params"]["bn"]["scale"], 1.0)


def test_round_trips_through_json_and_is_hashable():
    config = SpikingConfig(T=2, encoding="phase", neuron="learnable", lc_channels=3, v_reset=None)
    assert SpikingConfig(**json.loads(json.dumps(dataclasses.asdict(config)))) == config
    assert hash(config) == hash(dataclasses.replace(config))
