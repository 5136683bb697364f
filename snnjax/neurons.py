"""Leaky integrate-and-fire neurons unrolled over time with ``jax.lax.scan``.

Inputs are time-major, ``x: [T, ...]``. Per step (paper eqs. 1-4, docs/neurons.md):

    charge   H[t] = f(V[t-1], X[t])
    fire     S[t] = Θ(H[t] - V_th)                       (surrogate gradient in the backward pass)
    reset    V[t] = H[t] - S'[t]·V_th                     soft reset (v_reset=None)
             V[t] = S'[t]·V_reset + (1 - S'[t])·H[t]      hard reset
             S' = stop_gradient(S) if detach_reset else S;  V[-1] = V_reset (0 for soft reset)

The standard LIF charges with H = V + (X - (V - V_reset))/τ (decay_input) or
H = V - (V - V_reset)/τ + X, exactly as SpikingJelly's ``LIFNode`` (V_reset := 0 for soft reset);
the learnable LIF of eq. 4 charges with H = k_t ⊙ V + w_t ⊙ X (per time step and per channel).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import check
from snnjax.surrogate import Sigmoid, SurrogateLike, get, spike

Charge = Callable[[jax.Array, jax.Array, tuple], jax.Array]

# Unrolling the time loop lets XLA fuse charge/fire/reset across steps (2x faster on CPU at T=4);
# long scans (e.g. QKFormer's official T·B scan) are unrolled in chunks to bound compile time. An unrolled
# loop compiles slower: QKFormer-2-32's gradient at T=4 compiles in 24.5 s unrolled, 11.8 s with unroll=1.
_MAX_UNROLL = 8
# The backward pass, though, runs faster on a CPU as a loop of single steps (docs/performance.md §10):
# unrolled, XLA's CPU fusions recompute the reverse recurrence for every output step (T(T+1)/2 steps)
# and duplicate them per consumer. Elsewhere it unrolls like the forward pass.
_CPU_BACKWARD_UNROLL = 1


def _steps_per_iteration(unroll: int | None, T: int) -> int:
    """Time steps per scan iteration: ``unroll``, or min(T, 8) for None; never more than T."""
    return min(T, unroll or _MAX_UNROLL)


def _check_time_major(x: jax.Array, name: str = "x") -> None:
    check(x.ndim >= 1 and x.shape[0] >= 1, name, x.shape, "a time-major array [T, ...] with T >= 1")


def _scan_neuron(
    charge: Charge,
    x: jax.Array,
    per_step: tuple,
    *,
    v_threshold: float,
    v_reset: float | None,
    detach_reset: bool,
    surrogate: SurrogateLike,
    return_v: bool,
    unroll: int | None,
):
    """Runs charge → fire → reset over the leading time axis; ``per_step`` are scanned alongside x;
    ``unroll`` time steps per loop iteration (None: the fastest per platform, see
    :func:`_recomputing_scan`, which also differentiates the scan)."""
    surrogate = get(surrogate)
    v0 = jnp.full(x.shape[1:], 0.0 if v_reset is None else v_reset, dtype=x.dtype)

    def step(v, inputs):
        x_t, params_t = inputs
        h = charge(v, x_t, params_t)
        s = spike(h - v_threshold, surrogate)
        s_reset = jax.lax.stop_gradient(s) if detach_reset else s
        if v_reset is None:
            v = h - s_reset * v_threshold
        else:
            v = s_reset * v_reset + (1.0 - s_reset) * h
        return v, ((s, v) if return_v else s)

    if unroll is not None:
        check(isinstance(unroll, int) and unroll >= 1, "unroll", unroll, "an integer >= 1, or None for min(T, 8)")
    return _recomputing_scan(step, unroll, v0, (x, per_step))


def _scan(step: Callable, unroll: int, v0: jax.Array, xs: tuple, reverse: bool = False):
    """``jax.lax.scan(step, v0, xs, unroll=unroll, reverse=reverse)``, its stacked outputs behind an
    optimisation barrier. It changes how XLA fuses the steps with their consumers (QKFormer-3-256's train
    step compiles to 1184 fusions instead of 1342); on the CPU that step ran 8 % faster on one core and
    within noise on two (docs/performance.md §8.2)."""
    carry, stacked = jax.lax.scan(step, v0, xs, unroll=unroll, reverse=reverse)
    return carry, jax.lax.optimization_barrier(stacked)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _recomputing_scan(step: Callable, unroll: int | None, v0: jax.Array, xs: tuple):
    """:func:`_scan` with a backward pass that keeps no per-step residuals, only the inputs: it recomputes
    the membrane V[t-1] before each step (one elementwise pass), then runs the steps' VJPs in reverse time,
    each recomputing its charge, surrogate slope and reset. The gradients are autodiff's (tests compare
    them), and it bounds what a backend may keep alive to T·N inputs.

    ``unroll`` steps per iteration of all three scans; None unrolls min(T, 8) steps, except the reverse
    scan on a CPU, which runs one step per iteration (``_CPU_BACKWARD_UNROLL``)."""
    return _forward(step, unroll, v0, xs)


def _forward(step: Callable, unroll: int | None, v0: jax.Array, xs: tuple) -> jax.Array:
    return _scan(step, _steps_per_iteration(unroll, xs[0].shape[0]), v0, xs)[1]


def _recomputing_scan_fwd(step, unroll, v0, xs):
    return _forward(step, unroll, v0, xs), (v0, xs)


def _recomputing_scan_bwd(step, unroll, residuals, g):
    v0, xs = residuals
    T = xs[0].shape[0]

    def membrane_before(v, inputs):
        return step(v, inputs)[0], v

    _, v_before = _scan(membrane_before, _steps_per_iteration(unroll, T), v0, xs)

    def backward(g_v, inputs):
        v, inputs_t, g_t = inputs
        _, step_vjp = jax.vjp(step, v, inputs_t)
        g_v, g_inputs = step_vjp((g_v, g_t))
        return g_v, g_inputs

    def reverse(steps: int | None):
        return _scan(backward, _steps_per_iteration(steps, T), jnp.zeros_like(v0), (v_before, xs, g), reverse=True)

    if unroll is not None:
        return reverse(unroll)
    return jax.lax.platform_dependent(cpu=lambda: reverse(_CPU_BACKWARD_UNROLL), default=lambda: reverse(None))


_recomputing_scan.defvjp(_recomputing_scan_fwd, _recomputing_scan_bwd)


def lif(
    x: jax.Array,
    *,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    decay_input: bool = True,
    detach_reset: bool = False,
    surrogate: SurrogateLike = Sigmoid(),
    return_v: bool = False,
    unroll: int | None = None,
):
    """Multi-step LIF neuron (SpikingJelly ``LIFNode`` semantics), eqs. 1-3.

    Args:
      x: input current, time-major ``[T, ...]``.
      tau: membrane time constant τ > 1.
      v_reset: reset potential for the hard reset; ``None`` selects the soft reset (subtract V_th).
      decay_input: H = V + (X − (V − V_reset))/τ if True, else H = V − (V − V_reset)/τ + X.
      detach_reset: stop the gradient through the reset term.
      surrogate: backward of Θ (name, instance or None for no gradient).
      return_v: also return the post-reset membrane sequence V.
      unroll: time steps per iteration of the scans: 1 compiles fastest, None runs fastest (min(T, 8)
        steps, and one at a time in the backward pass on a CPU); the results are the same.

    Returns:
      Spikes ``[T, ...]`` in x's dtype, or ``(spikes, v)`` when ``return_v``.
    """
    _check_time_major(x)
    check(tau > 1.0, "tau", tau, "a number > 1 (the leak factor is 1 - 1/tau)")
    v_rest = 0.0 if v_reset is None else v_reset

    def charge(v, x_t, _):
        if decay_input:
            return v + (x_t - (v - v_rest)) / tau
        return v - (v - v_rest) / tau + x_t

    return _scan_neuron(
        charge,
        x,
        (),
        v_threshold=v_threshold,
        v_reset=v_reset,
        detach_reset=detach_reset,
        surrogate=surrogate,
        return_v=return_v,
        unroll=unroll,
    )


def learnable_lif(
    x: jax.Array,
    decay: jax.Array,
    weight: jax.Array,
    *,
    v_threshold: float = 1.0,
    v_reset: float | None = 0.0,
    detach_reset: bool = False,
    surrogate: SurrogateLike = Sigmoid(),
    return_v: bool = False,
    unroll: int | None = None,
):
    """Learnable LIF of eq. 4: H[t] = k_t ⊙ V[t-1] + w_t ⊙ X[t], then fire and reset as ``lif``.

    Args:
      x: input current ``[T, ..., C]``.
      decay: k, ``[T, C]``; ``decay[t]`` broadcasts against ``x[t]`` (so ``[T, 1]`` shares one k).
      weight: w, same shape as ``decay``.
      unroll: as in ``lif``.

    With k_t = 1 − 1/τ and w_t = 1/τ it equals ``lif(x, tau=τ)`` for v_reset ∈ {0, None}.
    """
    _check_time_major(x)
    for name, p in (("decay", decay), ("weight", weight)):
        check(p.ndim >= 1 and p.shape[0] == x.shape[0], name, p.shape, f"an array [T={x.shape[0]}, C]")
    x_dtype = x.dtype

    def charge(v, x_t, params_t):
        k, w = params_t
        return k.astype(x_dtype) * v + w.astype(x_dtype) * x_t

    return _scan_neuron(
        charge,
        x,
        (decay, weight),
        v_threshold=v_threshold,
        v_reset=v_reset,
        detach_reset=detach_reset,
        surrogate=surrogate,
        return_v=return_v,
        unroll=unroll,
    )


def record_firing_rate(module: nn.Module, spikes: jax.Array) -> None:
    """Sows the firing rate of each example of time-major ``spikes [T, B, ...]`` (the mean over every axis
    but B; one value for ``[T]``) into the ``firing_rates`` collection, so that an evaluation can average
    over its real examples only (:func:`snnjax.metrics.spikes.firing_rates`); and, only when the caller
    made the ``spikes`` collection mutable, the spikes themselves (:func:`snnjax.record.record_spikes`)."""
    s = spikes.astype(jnp.float32)
    rate = jnp.mean(s, axis=(0, *range(2, s.ndim))) if s.ndim >= 2 else jnp.mean(s)
    module.sow("firing_rates", "rate", rate)
    if _records(module, "spikes"):
        module.sow("spikes", "spikes", spikes)


def _records(module: nn.Module, collection: str) -> bool:
    """Whether an ``apply`` made ``collection`` mutable (``init`` makes every collection mutable: no)."""
    return module.is_mutable_collection(collection) and not module.is_initializing()


def wants_membrane(module: nn.Module) -> bool:
    """Whether the caller records membrane potentials (made the ``membrane`` collection mutable)."""
    return _records(module, "membrane")


def record_neuron(module: nn.Module, out: jax.Array | tuple[jax.Array, jax.Array]) -> jax.Array:
    """A neuron module's spikes from its scan's ``out`` (spikes, or ``(spikes, V)`` when
    :func:`wants_membrane`): sows the firing rates (and spikes), and V into ``membrane``."""
    if isinstance(out, tuple):
        out, v = out
        module.sow("membrane", "v", v)
    record_firing_rate(module, out)
    return out


class LIF(nn.Module):
    """Linen wrapper of :func:`lif` over ``[T, B, ..., C]``; sows its per-example firing rates (and its
    spikes and membrane potential where the caller records them, :func:`record_neuron`)."""

    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    decay_input: bool = True
    detach_reset: bool = False
    surrogate: SurrogateLike = Sigmoid()
    unroll: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out = lif(
            x,
            tau=self.tau,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            decay_input=self.decay_input,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
            return_v=wants_membrane(self),
            unroll=self.unroll,
        )
        return record_neuron(self, out)


class LearnableLIF(LIF):
    """Linen wrapper of :func:`learnable_lif`; owns ``decay`` and ``weight`` of shape ``[T, C]``.

    Takes the settings of :class:`LIF` and is initialised to k = 1 − 1/τ, w = 1/τ (decay_input) or
    1, so it starts as the standard LIF.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_time_major(x)
        shape = (x.shape[0], x.shape[-1])
        decay = self.param("decay", nn.initializers.constant(1.0 - 1.0 / self.tau), shape)
        w0 = 1.0 / self.tau if self.decay_input else 1.0
        weight = self.param("weight", nn.initializers.constant(w0), shape)
        out = learnable_lif(
            x,
            decay,
            weight,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
            return_v=wants_membrane(self),
            unroll=self.unroll,
        )
        return record_neuron(self, out)


NEURONS: dict[str, type] = {"lif": LIF, "learnable": LearnableLIF}


def make_neuron(kind: str, **settings) -> nn.Module:
    """The neuron module named ``kind``: ``LIF`` ("lif") or ``LearnableLIF`` ("learnable"), with ``settings``
    (``tau``, ``v_threshold``, ``v_reset``, ``detach_reset``, ``surrogate``, ``name``, ...)."""
    check(kind in NEURONS, "neuron", kind, ", ".join(map(repr, NEURONS)))
    return NEURONS[kind](**settings)
