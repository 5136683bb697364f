"""The spike nonlinearity Θ and its surrogate gradients.

Forward: ``Θ(x) = 1 if x >= 0 else 0`` (SpikingJelly's convention, firing at equality).
Backward: ``dΘ/dx := g'(x)``, the derivative of a smooth surrogate ``g``. The formulas and default
``alpha`` values follow SpikingJelly's ``activation_based.surrogate`` classes.

A surrogate is a small frozen (hashable) dataclass, so it can be a static argument of ``jax.jit``
and an attribute of a Flax module. ``None`` means "no surrogate": the gradient through the spike is
exactly zero.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from snnjax.checks import InvalidValue, check


@dataclasses.dataclass(frozen=True)
class Sigmoid:
    """g'(x) = α·σ(αx)·(1 − σ(αx))."""

    alpha: float = 4.0

    def derivative(self, x: jax.Array) -> jax.Array:
        s = jax.nn.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)


@dataclasses.dataclass(frozen=True)
class ATan:
    """g'(x) = (α/2) / (1 + (π·α·x/2)²)."""

    alpha: float = 2.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return (self.alpha / 2.0) / (1.0 + jnp.square(math.pi / 2.0 * self.alpha * x))


@dataclasses.dataclass(frozen=True)
class PiecewiseQuadratic:
    """g'(x) = α − α²·|x| for |x| ≤ 1/α, else 0."""

    alpha: float = 1.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return jnp.maximum(self.alpha - self.alpha**2 * jnp.abs(x), 0.0)


@dataclasses.dataclass(frozen=True)
class PiecewiseExp:
    """g'(x) = (α/2)·exp(−α·|x|)."""

    alpha: float = 1.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return self.alpha / 2.0 * jnp.exp(-self.alpha * jnp.abs(x))


@dataclasses.dataclass(frozen=True)
class Erf:
    """g'(x) = (α/√π)·exp(−(αx)²)."""

    alpha: float = 2.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return self.alpha / math.sqrt(math.pi) * jnp.exp(-jnp.square(self.alpha * x))


@dataclasses.dataclass(frozen=True)
class Rect:
    """g'(x) = α·1[|x| < 1/(2α)] (a box of unit area)."""

    alpha: float = 1.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return jnp.where(jnp.abs(x) < 0.5 / self.alpha, self.alpha, 0.0)


@dataclasses.dataclass(frozen=True)
class Triangle:
    """g'(x) = α·max(0, 1 − |x|): the triangular pseudo-derivative of Bellec et al. (2018).

    Unlike ``PiecewiseQuadratic`` (whose derivative is also a triangle, of unit area), the support is
    fixed to |x| < 1 and α only scales the height (the "dampening factor", 0.3 in that paper).
    SpikingJelly has no class of this name.
    """

    alpha: float = 1.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return self.alpha * jnp.maximum(1.0 - jnp.abs(x), 0.0)


@dataclasses.dataclass(frozen=True)
class SuperSpike:
    """g'(x) = α / (|x| + 1)²."""

    alpha: float = 1.0

    def derivative(self, x: jax.Array) -> jax.Array:
        return self.alpha / jnp.square(jnp.abs(x) + 1.0)


Surrogate = Sigmoid | ATan | PiecewiseQuadratic | PiecewiseExp | Erf | Rect | Triangle | SuperSpike
SurrogateLike = Surrogate | str | None

SURROGATES: dict[str, type] = {
    "sigmoid": Sigmoid,
    "atan": ATan,
    "piecewise_quadratic": PiecewiseQuadratic,
    "piecewise_exp": PiecewiseExp,
    "erf": Erf,
    "rect": Rect,
    "triangle": Triangle,
    "superspike": SuperSpike,
}


def get(surrogate: SurrogateLike, alpha: float | None = None) -> Surrogate | None:
    """Resolves a surrogate given by name (``"sigmoid"``, ..., or ``"none"``), instance or ``None``.

    ``alpha`` overrides the default α when a name is given.
    """
    if surrogate is None or isinstance(surrogate, tuple(SURROGATES.values())):
        check(alpha is None, "alpha", alpha, f"None unless surrogate is given by name (surrogate is {surrogate!r})")
        return surrogate
    if isinstance(surrogate, str):
        name = surrogate.lower()
        if name == "none":
            return None
        if name in SURROGATES:
            return SURROGATES[name]() if alpha is None else SURROGATES[name](alpha=alpha)
    raise InvalidValue(
        "surrogate",
        surrogate,
        f"None, 'none', {', '.join(repr(n) for n in SURROGATES)} or an instance of one of their classes",
    )


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _heaviside(x: jax.Array, surrogate: Surrogate | None) -> jax.Array:
    return (x >= 0).astype(x.dtype)


def _heaviside_fwd(x, surrogate):
    return _heaviside(x, surrogate), x


def _heaviside_bwd(surrogate, x, g):
    if surrogate is None:
        return (jnp.zeros_like(g),)
    slope = surrogate.derivative(x.astype(jnp.float32))
    return ((g.astype(jnp.float32) * slope).astype(g.dtype),)


_heaviside.defvjp(_heaviside_fwd, _heaviside_bwd)


def spike(x: jax.Array, surrogate: SurrogateLike = Sigmoid()) -> jax.Array:
    """Θ(x) = 1[x >= 0] in the dtype of ``x``; the backward pass uses ``surrogate``'s derivative.

    The surrogate's slope is evaluated in float32 and the cotangent is returned in the input dtype,
    so bf16 activations get well-resolved gradients.
    """
    return _heaviside(x, get(surrogate))
