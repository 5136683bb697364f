"""Operation counts and energy: a tiny network counted by hand."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.checks import InvalidValue
from snnjax.metrics import energy

B, T = 3, 2


class Tiny(nn.Module):
    """conv 3×3 (2 → 4 channels, 4×4, padding 1) on the image; spikes; conv 1×1 (4 → 2) over T·B
    time-folded spikes; dense 32 → 3 on the time average."""

    @nn.compact
    def __call__(self, x):
        y = nn.Conv(4, (3, 3), padding=1, use_bias=False, name="stem")(x)
        spikes = jnp.concatenate([(y > 0), (y > 0.5)]).astype(jnp.float32)  # [T·B, 4, 4, 4]
        z = nn.Conv(2, (1, 1), name="pointwise")(spikes)
        return nn.Dense(3, name="head")(z.reshape(T, x.shape[0], -1).mean(0)), spikes


def sown_operations():
    """The tiny network's sown operations and its spikes."""
    x = jax.random.normal(jax.random.key(0), (B, 4, 4, 2))
    model = Tiny()
    variables = model.init(jax.random.key(1), x)
    with nn.intercept_methods(energy.operations_interceptor(B)):
        (_, spikes), sown = model.apply(variables, x, mutable=[energy.COLLECTION])
    return sown[energy.COLLECTION], np.asarray(spikes)


def counted(weights):
    sown, spikes = sown_operations()
    return energy.energy(jax.jit(energy.operation_sums)(sown, weights)), spikes


def test_hand_count_of_macs_accumulates_and_energy():
    weights = jnp.array([1.0, 1.0, 0.0])  # the third example is padding
    figures, spikes = counted(weights)
    layers = figures["layers"]
    stem_macs = 4 * 4 * 4 * (3 * 3 * 2)  # outputs per example × fan-in
    pointwise_macs = T * 4 * 4 * 2 * 4  # T steps of 16 positions × 2 outputs × 4 inputs
    head_macs = 3 * 32
    assert layers["stem"] == {"macs": stem_macs, "ops": stem_macs, "spiking": False}
    assert layers["head"] == {"macs": head_macs, "ops": head_macs, "spiking": False}
    per_example = spikes.reshape(T, B, -1).mean(axis=(0, 2))  # each example's firing rate over T
    rate = per_example[:2].mean()  # the padding example does not count
    assert layers["pointwise"]["spiking"]
    assert layers["pointwise"]["macs"] == pointwise_macs
    np.testing.assert_allclose(layers["pointwise"]["ops"], pointwise_macs * rate, rtol=1e-6)
    np.testing.assert_allclose(figures["ac_ops"], pointwise_macs * rate, rtol=1e-6)
    assert figures["mac_ops"] == stem_macs + head_macs
    expected_pj = 4.6 * (stem_macs + head_macs) + 0.9 * pointwise_macs * rate
    np.testing.assert_allclose(figures["energy_mj"], expected_pj * 1e-9, rtol=1e-6)


def test_sums_of_batches_add_up_to_the_mean_over_all_examples():
    sown, _ = sown_operations()
    first = energy.operation_sums(sown, jnp.array([1.0, 0.0, 0.0]))
    rest = energy.operation_sums(sown, jnp.array([0.0, 1.0, 1.0]))
    total = energy.energy(jax.tree_util.tree_map(jnp.add, first, rest))
    whole = energy.energy(energy.operation_sums(sown, jnp.ones(B)))
    for name, layer in whole["layers"].items():
        assert total["layers"][name] == pytest.approx(layer)
    assert total["energy_mj"] == pytest.approx(whole["energy_mj"])


def test_summary_gives_the_task_metrics():
    sown, _ = sown_operations()
    sums = energy.operation_sums(sown, jnp.ones(B))
    summary, figures = energy.summary(sums), energy.energy(sums)
    assert set(summary) == {"energy_mj", "mac_ops", "ac_ops", "operations_per_layer"}
    assert summary["operations_per_layer"] == figures["layers"]
    assert summary["energy_mj"] == figures["energy_mj"]


def test_an_input_whose_leading_axis_is_not_the_batch_is_refused():
    model = nn.Dense(2)
    x = jnp.ones((5, 3))
    variables = model.init(jax.random.key(0), x)
    with nn.intercept_methods(energy.operations_interceptor(2)), pytest.raises(InvalidValue, match="Dense input"):
        model.apply(variables, x, mutable=[energy.COLLECTION])
