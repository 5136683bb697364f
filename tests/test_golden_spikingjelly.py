"""snnjax's LIF neurons against SpikingJelly's multi-step ``LIFNode`` and ``ParametricLIFNode``.

The reference numbers are in ``golden/sj_lif_golden.npz``, written by ``golden/make_sj_golden.py``
(SpikingJelly 2.0.0, torch 2.13.0 CPU). Spikes must match exactly (including H exactly at the threshold);
the post-reset membrane and the gradients of L = sum(S·gs) + sum(V·gv) to float32 round-off.
"""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax import neurons, surrogate

GOLDEN = np.load(Path(__file__).parent / "golden" / "sj_lif_golden.npz")
CASES = json.loads(str(GOLDEN["cases"]))
TOL = dict(atol=1e-6, rtol=1e-5)
SURROGATES = {"sigmoid": surrogate.Sigmoid, "atan": surrogate.ATan}


def _cases(kind):
    return [pytest.param(c, id=c["name"]) for c in CASES if c["kind"] == kind]


def _common(c):
    return dict(
        v_threshold=c["v_threshold"],
        v_reset=c["v_reset"],
        detach_reset=c["detach_reset"],
        surrogate=SURROGATES[c["surrogate"]](alpha=c["alpha"]),
        return_v=True,
    )


def _loss(spikes_and_v):
    s, v = spikes_and_v
    return jnp.sum(s * GOLDEN["gs"]) + jnp.sum(v * GOLDEN["gv"]), (s, v)


def _assert_matches(c, s, v, grads):
    ref = {k: GOLDEN[f"{c['name']}/{k}"] for k in ("spikes", "v_seq", *grads)}
    np.testing.assert_array_equal(np.asarray(s), ref["spikes"].astype(np.float32))
    np.testing.assert_allclose(np.asarray(v), ref["v_seq"], **TOL)
    for k, g in grads.items():
        np.testing.assert_allclose(np.asarray(g), ref[k], err_msg=f"d L / {k[1:]}", **TOL)


@pytest.mark.parametrize("c", _cases("lif"))
def test_lif_matches_spikingjelly_lifnode(c):
    def loss(x):
        return _loss(neurons.lif(x, tau=c["tau"], decay_input=c["decay_input"], **_common(c)))

    (_, (s, v)), dx = jax.value_and_grad(loss, has_aux=True)(jnp.asarray(GOLDEN["x"]))
    _assert_matches(c, s, v, {"dx": dx})


@pytest.mark.parametrize("c", _cases("plif"))
def test_learnable_lif_matches_spikingjelly_plif(c):
    """PLIF is eq. 4 with k_t = 1 − sigmoid(w) and w_t = sigmoid(w) (or 1 without decay_input)."""
    x = jnp.asarray(GOLDEN["x"])

    def loss(x, w):
        q = jax.nn.sigmoid(w)
        decay = jnp.broadcast_to(1.0 - q, x.shape)
        weight = jnp.broadcast_to(q if c["decay_input"] else jnp.ones_like(q), x.shape)
        return _loss(neurons.learnable_lif(x, decay, weight, **_common(c)))

    w = jnp.asarray(GOLDEN[f"{c['name']}/w"])
    (_, (s, v)), (dx, dw) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(x, w)
    _assert_matches(c, s, v, {"dx": dx, "dw": dw})
