"""Writes ``sj_lif_golden.npz``: SpikingJelly's multi-step LIF and PLIF outputs and gradients.

``tests/test_golden_spikingjelly.py`` compares ``snnjax.neurons`` against this file; the project itself
never imports torch or SpikingJelly. Regenerate it (rarely: only to change the cases) in a throw-away
venv outside the repository, with CPU torch:

    python3 -m venv /work/sjvenv
    /work/sjvenv/bin/pip install torch==2.13.0            # the CPU wheel; not a CUDA build
    /work/sjvenv/bin/pip install --no-deps spikingjelly    # 2.0.x; its deps pin a CUDA torch
    /work/sjvenv/bin/pip install numpy packaging loguru tqdm
    /work/sjvenv/bin/python tests/golden/make_sj_golden.py

The output is deterministic (fixed seed, float32, one thread, deterministic torch algorithms).

Contents: shared inputs ``x`` [T=6, N=64] and loss cotangents ``gs``, ``gv``; ``cases``, a JSON list of
the settings of every case; and per case ``<name>/spikes`` (uint8), ``<name>/v_seq`` (post-reset membrane),
``<name>/dx`` = dL/dx, plus ``<name>/w`` and ``<name>/dw`` for PLIF (its scalar parameter w, 1/τ =
sigmoid(w)). The loss is L = sum(spikes·gs) + sum(v_seq·gv). Columns 0..15 of x are random multiples of 1/4,
column 16 is constant 2.0 and column 17 constant 1.0, so with τ = 2 the membrane is computed exactly and H
lands exactly on the threshold in places, which checks that Θ fires at equality. The script asserts that
every other H is at least ``MARGIN`` away from the threshold, so the spikes do not depend on float32
evaluation order.
"""

import importlib.metadata
import json
import math
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import neuron, surrogate

T, N = 6, 64
SEED = 20240607
MARGIN = 1e-5
OUT = Path(__file__).with_name("sj_lif_golden.npz")
SURROGATES = {"sigmoid": surrogate.Sigmoid, "atan": surrogate.ATan}


def lif_case(reset, di, dr, sg, alpha, tau=2.0, v_threshold=1.0):
    """Settings of one LIFNode case; ``reset`` is None (soft) or the hard-reset potential."""
    return dict(
        kind="lif",
        tau=tau,
        v_threshold=v_threshold,
        v_reset=reset,
        decay_input=di,
        detach_reset=dr,
        surrogate=sg,
        alpha=alpha,
    )


def plif_case(reset, di, dr, sg, alpha, init_tau=1.7):
    """Settings of one ParametricLIFNode case (v_reset must be None or 0 for eq. 4 to hold)."""
    return dict(
        kind="plif",
        init_tau=init_tau,
        v_threshold=1.0,
        v_reset=reset,
        decay_input=di,
        detach_reset=dr,
        surrogate=sg,
        alpha=alpha,
    )


def case_name(c):
    reset = "soft" if c["v_reset"] is None else f"hard{c['v_reset']:g}"
    extra = f"_tau{c['tau']:g}_vth{c['v_threshold']:g}" if c["kind"] == "lif" else f"_itau{c['init_tau']:g}"
    return (
        f"{c['kind']}_{reset}_di{int(c['decay_input'])}_dr{int(c['detach_reset'])}"
        f"_{c['surrogate']}{c['alpha']:g}{extra}"
    )


def all_cases():
    grid = [
        lif_case(reset, di, dr, sg, alpha)
        for reset in (None, 0.0)
        for di in (True, False)
        for dr in (False, True)
        for sg, alpha in (("sigmoid", 4.0), ("atan", 2.0))
    ]
    extra = [
        lif_case(-0.2, True, False, "sigmoid", 3.0, tau=3.0, v_threshold=0.7),
        lif_case(None, False, False, "atan", 2.0, tau=3.0, v_threshold=0.7),
    ]
    plif = [
        plif_case(None, True, False, "sigmoid", 4.0),
        plif_case(0.0, True, True, "atan", 2.0),
        plif_case(0.0, True, False, "sigmoid", 4.0, init_tau=2.4),
        plif_case(None, False, False, "atan", 2.0),
    ]
    return grid + extra + plif


def make_inputs(rng):
    """x: 16 random quarter-step columns, a constant 2.0 and a constant 1.0 column, then uniform floats."""
    dyadic = rng.integers(-2, 11, size=(T, 16)) / 4.0
    const = np.stack([np.full(T, 2.0), np.full(T, 1.0)], axis=1)
    rand = rng.uniform(-0.5, 2.5, size=(T, N - 18))
    x = np.concatenate([dyadic, const, rand], axis=1).astype(np.float32)
    gs = rng.standard_normal((T, N)).astype(np.float32)
    gv = rng.standard_normal((T, N)).astype(np.float32)
    return x, gs, gv


def run_case(c, x, gs, gv):
    """Runs SpikingJelly in multi-step mode; returns its arrays and 1/τ (a tensor for PLIF)."""
    kw = dict(
        v_threshold=c["v_threshold"],
        v_reset=c["v_reset"],
        decay_input=c["decay_input"],
        detach_reset=c["detach_reset"],
        surrogate_function=SURROGATES[c["surrogate"]](alpha=c["alpha"]),
        step_mode="m",
        store_v_seq=True,
    )
    node = (
        neuron.LIFNode(tau=c["tau"], **kw)
        if c["kind"] == "lif"
        else neuron.ParametricLIFNode(init_tau=c["init_tau"], **kw)
    )
    xt = torch.tensor(x, requires_grad=True)
    spikes = node(xt)
    loss = (spikes * torch.from_numpy(gs)).sum() + (node.v_seq * torch.from_numpy(gv)).sum()
    loss.backward()
    out = {
        "spikes": spikes.detach().numpy().astype(np.uint8),
        "v_seq": node.v_seq.detach().numpy(),
        "dx": xt.grad.numpy(),
    }
    if c["kind"] == "plif":
        out["w"] = node.w.detach().numpy().astype(np.float32)
        out["dw"] = node.w.grad.numpy().astype(np.float32)
        inv_tau = 1.0 / (1.0 + math.exp(-float(out["w"])))
    else:
        inv_tau = 1.0 / c["tau"]
    return out, inv_tau


def threshold_distance(c, x, out, inv_tau):
    """H − V_th in float64, recomputed from SpikingJelly's own V[t-1] (teacher-forced)."""
    vr = 0.0 if c["v_reset"] is None else c["v_reset"]
    v_prev = np.concatenate([np.full((1, N), vr), out["v_seq"][:-1].astype(np.float64)])
    x64 = x.astype(np.float64)
    h = v_prev + (x64 - (v_prev - vr)) * inv_tau if c["decay_input"] else v_prev - (v_prev - vr) * inv_tau + x64
    assert np.array_equal(h >= c["v_threshold"], out["spikes"].astype(bool)), case_name(c)
    return h - c["v_threshold"]


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, gs, gv = make_inputs(np.random.default_rng(SEED))
    arrays = {"x": x, "gs": gs, "gv": gv}
    cases = all_cases()
    for c in cases:
        name = case_name(c)
        out, inv_tau = run_case(c, x, gs, gv)
        d = threshold_distance(c, x, out, inv_tau)
        near = (np.abs(d) < MARGIN) & (d != 0)
        assert not near.any(), f"{name}: H within {MARGIN} of V_th at {np.argwhere(near).tolist()}"
        print(f"{name:48s} spikes={int(out['spikes'].sum()):3d}  exact ties={int((d == 0).sum())}")
        arrays.update({f"{name}/{k}": v for k, v in out.items()})
    arrays["cases"] = np.array(json.dumps([dict(c, name=case_name(c)) for c in cases]))
    arrays["spikingjelly_version"] = np.array(importlib.metadata.version("spikingjelly"))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
