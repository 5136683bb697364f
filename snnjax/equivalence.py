"""Direct encoding as rate coding (paper Appendix B): the spike patterns of a LIF under constant input.

Under a constant input current x, a LIF's spike train over T steps is a step function of x: it takes
finitely many patterns, each on an interval [b_i, b_{i+1}) (firing at equality makes the lower end
closed). ``constant_input_patterns`` finds the patterns and their boundaries with ``snnjax.neurons.lif``:
a dense sweep locates every change of pattern, and bisection refines each boundary to float64 round-off.
"""

from __future__ import annotations

import dataclasses
import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.neurons import lif


@dataclasses.dataclass(frozen=True)
class PatternInterval:
    """Spike pattern (``"0101"``, t = 1..T left to right) produced by every x in [lower, upper)."""

    pattern: str
    lower: float  # -inf for the first interval
    upper: float  # +inf for the last interval

    @property
    def spike_count(self) -> int:
        return self.pattern.count("1")


@functools.cache
def _compiled_lif(lif_kwargs: tuple):
    return jax.jit(functools.partial(lif, surrogate=None, **dict(lif_kwargs)))


def _patterns(x: np.ndarray, T: int, lif_kwargs: dict) -> np.ndarray:
    """Spike trains ``[N, T]`` (uint8) of a LIF driven by each constant x, computed in float64."""
    with jax.enable_x64(True):
        drive = jnp.broadcast_to(jnp.asarray(x, jnp.float64), (T, len(x)))
        return np.asarray(_compiled_lif(tuple(sorted(lif_kwargs.items())))(drive), np.uint8).T


def constant_input_patterns(
    *,
    T: int = 4,
    tau: float = 2.0,
    v_threshold: float = 1.0,
    v_reset: float | None = None,
    decay_input: bool = True,
    x_min: float = -1.0,
    x_max: float | None = None,
    points: int = 200_001,
) -> list[PatternInterval]:
    """Every distinct spike pattern of a LIF under constant input x ∈ [x_min, x_max], with its interval.

    ``x_max`` defaults to a value beyond which the neuron fires at every step (2·τ·V_th for
    decay_input, 2·V_th otherwise, times 4 for margin). Patterns narrower than the sweep's spacing
    ((x_max − x_min)/points) could be missed; the default resolves 1e-4.
    """
    if x_max is None:
        x_max = 8.0 * v_threshold * (tau if decay_input else 1.0)
    kwargs = dict(tau=tau, v_threshold=v_threshold, v_reset=v_reset, decay_input=decay_input)
    grid = np.linspace(x_min, x_max, points)
    trains = _patterns(grid, T, kwargs)
    change = np.flatnonzero(np.any(trains[1:] != trains[:-1], axis=1))
    lo, hi = grid[change], grid[change + 1]
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        same_as_lo = np.all(_patterns(mid, T, kwargs) == trains[change], axis=1)
        lo, hi = np.where(same_as_lo, mid, lo), np.where(same_as_lo, hi, mid)
    bounds = np.concatenate([[-np.inf], hi, [np.inf]])
    names = ["".join(map(str, row)) for row in trains[np.concatenate([[0], change + 1])]]
    return [PatternInterval(p, float(a), float(b)) for p, a, b in zip(names, bounds[:-1], bounds[1:])]


def as_fraction(x: float, max_denominator: int = 1000) -> str:
    """``x`` as a small fraction (``"16/15"``) when it is one to 1e-9, else as a decimal."""
    if not np.isfinite(x):
        return "∞" if x > 0 else "−∞"
    f = Fraction(x).limit_denominator(max_denominator)
    if abs(float(f) - x) > 1e-9:
        return f"{x:.6g}"
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def markdown_table(intervals: list[PatternInterval]) -> str:
    """The Appendix B table: firing pattern, input interval, spike count."""
    rows = ["| Firing pattern | Input interval | Spikes |", "|---|---|---|"]
    for iv in intervals:
        if np.isinf(iv.lower):
            span = f"x < {as_fraction(iv.upper)}"
        elif np.isinf(iv.upper):
            span = f"x ≥ {as_fraction(iv.lower)}"
        else:
            span = f"{as_fraction(iv.lower)} ≤ x < {as_fraction(iv.upper)}"
        rows.append(f"| {iv.pattern} | {span} | {iv.spike_count} |")
    return "\n".join(rows)
