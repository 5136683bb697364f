"""The unified learnable temporal encoder (paper §3.2, docs/encoding.md).

A static feature map X (the raw image, or the output of a learnable conv+BN) is replicated over T
steps, X_1 = X, and for t = 1..T:

    S_t = Θ(X_t − θ_t)                       (5)
    θ_t = θ_0 · λ^(t−1)                      (6)
    phase: X_{t+1} = X_t − S_t ⊙ θ_t         (7)  binary expansion: the spikes are the bits of X
    ttfs:  X_{t+1} = X_t ⊙ (1 − S_t)         (8)  at most one spike; larger X fires earlier
    rate:  X_{t+1} = X_t                           thermometer code: the spike count grows with X

``direct`` repeats X over time (a LIF follows it); ``poisson`` draws S_t ~ Bernoulli(clip(X, 0, 1)).
Every encoder maps ``x: [...]`` to ``[T, ...]``. θ_0 and λ broadcast against x (per channel: ``[C]``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import check, is_int, number, one_of
from snnjax.layers import conv_bn
from snnjax.neurons import NEURONS, make_neuron, record_firing_rate
from snnjax.surrogate import Sigmoid, SurrogateLike, get, spike

KINDS = ("direct", "rate", "poisson", "phase", "ttfs")
_UPDATES = {"rate": "none", "phase": "subtract", "ttfs": "silence"}
_MIN_THRESHOLD = 1e-3  # a learnt θ_0 is kept positive, so silenced TTFS neurons stay silent


def _check_T(T) -> None:
    check(is_int(T) and T >= 1, "T", T, "an int >= 1 (the number of time steps)")


def threshold_schedule(threshold: jax.Array | float, threshold_decay: jax.Array | float, T: int) -> jax.Array:
    """θ_t = θ_0 · λ^(t−1) for t = 1..T (eq. 6); returns ``[T, *broadcast(θ_0, λ).shape]``."""
    _check_T(T)
    theta0, lam = jnp.asarray(threshold), jnp.asarray(threshold_decay)
    powers = jnp.arange(T, dtype=jnp.result_type(theta0, lam, jnp.float32))
    powers = powers.reshape((T,) + (1,) * max(theta0.ndim, lam.ndim))
    return theta0 * lam**powers


def _threshold_encode(x, T, threshold, threshold_decay, surrogate, update: str) -> jax.Array:
    """Eqs. 5-8: fire against the decaying threshold, then update X by ``update``.

    The T steps are unrolled: XLA then fuses each step's spike and update with its neighbours', and the
    gradient of X accumulates over t in one fused sum, 2-4× faster on a CPU than a loop or (for ``rate``)
    a broadcast over a new time axis, whose gradient reduces that axis (docs/performance.md §11).
    """
    thetas = threshold_schedule(threshold, threshold_decay, T).astype(x.dtype)
    pad = x.ndim - (thetas.ndim - 1)
    check(pad >= 0, "threshold", thetas.shape[1:], f"θ_0 and λ shapes that broadcast against x {x.shape}")
    thetas = thetas.reshape((T,) + (1,) * pad + thetas.shape[1:])
    surrogate = get(surrogate)

    def step(x_t, theta_t):
        s = spike(x_t - theta_t, surrogate)
        if update == "subtract":
            return x_t - s * theta_t, s
        return (x_t * (1.0 - s) if update == "silence" else x_t), s

    _, spikes = jax.lax.scan(step, x, thetas, unroll=True)
    return spikes


def direct(x: jax.Array, T: int) -> jax.Array:
    """Direct encoding: X repeated T times, ``[T, *x.shape]`` (an ordinary LIF consumes it).

    Stacked copies, not a broadcast: the gradient is then T − 1 adds of the cotangent's slices, where a
    broadcast's is a reduction over the leading axis, 20× slower on a CPU (docs/performance.md §11).
    """
    _check_T(T)
    return jnp.stack([x] * T)


def rate(
    x: jax.Array, T: int, *, threshold=1.0, threshold_decay=0.5, surrogate: SurrogateLike = Sigmoid()
) -> jax.Array:
    """Rate (thermometer) encoding: S_t = Θ(X − θ_t) with X held constant."""
    _check_T(T)
    return _threshold_encode(x, T, threshold, threshold_decay, surrogate, "none")


def phase(
    x: jax.Array, T: int, *, threshold=1.0, threshold_decay=0.5, surrogate: SurrogateLike = Sigmoid()
) -> jax.Array:
    """Phase encoding, eq. 7: X_{t+1} = X_t − S_t θ_t, so Σ_t S_t θ_t approximates X from below."""
    _check_T(T)
    return _threshold_encode(x, T, threshold, threshold_decay, surrogate, "subtract")


def ttfs(
    x: jax.Array, T: int, *, threshold=1.0, threshold_decay=0.5, surrogate: SurrogateLike = Sigmoid()
) -> jax.Array:
    """Time-to-first-spike encoding, eq. 8: X_{t+1} = X_t (1 − S_t); each neuron fires at most once."""
    _check_T(T)
    return _threshold_encode(x, T, threshold, threshold_decay, surrogate, "silence")


def poisson(x: jax.Array, T: int, *, key: jax.Array, straight_through: bool = True) -> jax.Array:
    """Poisson rate coding: S_t ~ Bernoulli(clip(X, 0, 1)), independent over t.

    With ``straight_through`` the backward pass treats S_t as clip(X, 0, 1) (dS/dX = 1 inside [0, 1]);
    otherwise no gradient reaches X.
    """
    _check_T(T)
    p = direct(jnp.clip(x, 0.0, 1.0), T)
    draws = jax.random.bernoulli(key, p).astype(x.dtype)
    if not straight_through:
        return jax.lax.stop_gradient(draws)
    return p + jax.lax.stop_gradient(draws - p)


def encode(
    kind: str,
    x: jax.Array,
    T: int,
    *,
    threshold=1.0,
    threshold_decay=0.5,
    surrogate: SurrogateLike = Sigmoid(),
    key: jax.Array | None = None,
) -> jax.Array:
    """Dispatches to the encoder named ``kind`` (one of ``KINDS``)."""
    one_of(KINDS)("encoding", kind)
    if kind == "direct":
        return direct(x, T)
    if kind == "poisson":
        check(key is not None, "key", key, "a PRNG key (the poisson encoding draws random spikes)")
        return poisson(x, T, key=key, straight_through=get(surrogate) is not None)
    return _threshold_encode(x, T, threshold, threshold_decay, surrogate, _UPDATES[kind])


class TemporalEncoder(nn.Module):
    """Turns images ``[B, H, W, C]`` into spikes ``[T, B, H, W, C']`` (docs/encoding.md).

    Attributes:
      kind: one of ``KINDS``.
      T: number of time steps.
      features: width of the model's first conv (the LC conv); C' = ``lc_channels or features``.
      learnable_threshold (LT): θ_0 and λ = sigmoid(ρ) are trained (per channel); off, constants.
      learnable_conv (LC): encode the output of an owned conv3×3+BN instead of the raw image.
      surrogate_gradient (SG): the encoder's spike uses ``surrogate`` in the backward pass; off, none.
      lc_channels: overrides the LC conv's width (the paper's discussion uses 3).
      lc_kernel_size, lc_strides, lc_padding, bn_momentum, bn_epsilon: the LC conv+BN's geometry and BN
        settings (defaults: QKFormer's 3×3/1 conv with PyTorch BN; YOLOv5 uses 6×6/2, pad 2, BN 0.97/1e-3).
      neuron, neuron_kwargs: the neuron that follows ``direct`` encoding ("lif" or "learnable").
    The encoding RNG for ``poisson`` comes from the ``"encoding"`` rng stream.
    """

    kind: str
    T: int
    features: int = 64
    learnable_threshold: bool = True
    learnable_conv: bool = True
    surrogate_gradient: bool = True
    lc_channels: int | None = None
    lc_kernel_size: tuple[int, int] = (3, 3)
    lc_strides: tuple[int, int] = (1, 1)
    lc_padding: int = 1
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    surrogate: SurrogateLike = Sigmoid()
    threshold_init: float = 1.0
    threshold_decay_init: float = 0.5
    neuron: str = "lif"
    neuron_kwargs: dict | None = None
    dtype: jnp.dtype | None = None

    def _validate(self, x: jax.Array) -> None:
        one_of(KINDS)("kind", self.kind)
        _check_T(self.T)
        check(x.ndim == 4, "x", x.shape, "images [B, H, W, C]")
        check(
            self.kind != "direct" or self.learnable_conv,
            "learnable_conv",
            self.learnable_conv,
            "True with the 'direct' encoding (it feeds a conv's output to a LIF)",
        )
        one_of(NEURONS)("neuron", self.neuron)
        number(0, low_open=True)("threshold_init", self.threshold_init)
        number(0, 1, low_open=True, high_open=True)("threshold_decay_init", self.threshold_decay_init)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        self._validate(x)
        x = x.astype(self.dtype or x.dtype)
        if self.learnable_conv:  # on the static image: the conv of X repeated T times is conv(X) repeated
            x = conv_bn(
                x,
                features=self.lc_channels or self.features,
                kernel_size=self.lc_kernel_size,
                strides=self.lc_strides,
                padding=self.lc_padding,
                train=train,
                bn_momentum=self.bn_momentum,
                bn_epsilon=self.bn_epsilon,
                dtype=self.dtype,
            )
        if self.kind == "direct":
            return make_neuron(self.neuron, **(self.neuron_kwargs or {}), name="lif")(direct(x, self.T))
        threshold, threshold_decay = self._thresholds(x.shape[-1])
        surrogate = self.surrogate if self.surrogate_gradient else None
        key = self.make_rng("encoding") if self.kind == "poisson" else None
        s = encode(
            self.kind, x, self.T, threshold=threshold, threshold_decay=threshold_decay, surrogate=surrogate, key=key
        )
        record_firing_rate(self, s)
        return s

    def _thresholds(self, channels: int) -> tuple[jax.Array, jax.Array]:
        """θ_0 (kept ≥ 1e-3) and λ = sigmoid(ρ), per channel; trainable under LT, constants otherwise."""
        rho0 = jnp.log(self.threshold_decay_init / (1.0 - self.threshold_decay_init))
        theta_init = nn.initializers.constant(self.threshold_init)
        rho_init = nn.initializers.constant(rho0)
        if self.learnable_threshold:
            theta0 = self.param("threshold", theta_init, (channels,))
            rho = self.param("threshold_decay_logit", rho_init, (channels,))
        else:
            theta0 = theta_init(None, (channels,))
            rho = rho_init(None, (channels,))
        return jnp.maximum(theta0, _MIN_THRESHOLD), jax.nn.sigmoid(rho)
