"""The spiking settings a model shares between its temporal encoder and its neurons (DESIGN.md §3-4).

One frozen :class:`SpikingConfig` travels unchanged from the experiment flags through the saved run
config (``config.json``) into QKFormer and YOLOv5n, so every spiking model is configured the same way.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from snnjax.encoding import KINDS, TemporalEncoder
from snnjax.models.checks import check, is_int
from snnjax.neurons import NEURONS
from snnjax.surrogate import SurrogateLike, get


@dataclasses.dataclass(frozen=True)
class SpikingConfig:
    """Temporal encoder and neuron settings of a spiking model.

    Encoder (DESIGN.md §4): ``T`` time steps, ``encoding`` in ``KINDS``, learnable threshold (LT),
    learnable conv (LC), surrogate gradient through the encoder's spikes (SG), ``lc_channels`` (the LC
    conv's width; None: the model's stem width). Neurons (DESIGN.md §3), everywhere in the model:
    ``neuron`` "lif" or "learnable" (eq. 4), membrane constant ``tau``, ``v_reset`` (None: soft reset),
    ``detach_reset`` and ``surrogate`` (a name such as "sigmoid", "none", or a Surrogate instance).
    ``bn_scale``: the initial scale γ of the BatchNorm in front of every neuron after the encoder (PyTorch's 1
    by default; with γ = τ·V_th = 2 the first step's membrane X/τ reaches the threshold one standard deviation
    above the mean, and the surrogate passes as much gradient through depth as an ANN's BN+SiLU). The
    encoder's LC BatchNorm keeps γ = 1, so every encoding sees the same input. Names rather than objects keep
    a config JSON-ready.
    """

    T: int = 4
    encoding: str = "direct"
    learnable_threshold: bool = True
    learnable_conv: bool = True
    surrogate_gradient: bool = True
    lc_channels: int | None = None
    neuron: str = "lif"
    tau: float = 2.0
    v_reset: float | None = 0.0
    detach_reset: bool = True
    surrogate: SurrogateLike = "sigmoid"
    bn_scale: float = 1.0

    def validate(self) -> None:
        """Raises ``ValueError("<field>: got ...; accepted: ...")`` for the first bad field."""
        check(is_int(self.T) and self.T >= 1, "T", self.T, "an int >= 1")
        check(self.encoding in KINDS, "encoding", self.encoding, ", ".join(map(repr, KINDS)))
        for attr in ("learnable_threshold", "learnable_conv", "surrogate_gradient", "detach_reset"):
            check(isinstance(getattr(self, attr), bool), attr, getattr(self, attr), "True or False")
        check(
            self.encoding != "direct" or self.learnable_conv,
            "learnable_conv",
            self.learnable_conv,
            "True with encoding='direct' (it feeds the first conv's output to a LIF)",
        )
        check(
            self.lc_channels is None or (is_int(self.lc_channels) and self.lc_channels >= 1),
            "lc_channels",
            self.lc_channels,
            "None or an int >= 1",
        )
        check(self.neuron in NEURONS, "neuron", self.neuron, ", ".join(map(repr, NEURONS)))
        check(
            isinstance(self.tau, (int, float)) and not isinstance(self.tau, bool) and self.tau > 1,
            "tau",
            self.tau,
            "a number > 1",
        )
        check(
            self.v_reset is None or (isinstance(self.v_reset, (int, float)) and not isinstance(self.v_reset, bool)),
            "v_reset",
            self.v_reset,
            "None (soft reset) or a number (hard reset)",
        )
        get(self.surrogate)
        check(
            isinstance(self.bn_scale, (int, float)) and not isinstance(self.bn_scale, bool) and self.bn_scale > 0,
            "bn_scale",
            self.bn_scale,
            "a number > 0",
        )

    def neuron_kwargs(self, v_threshold: float = 1.0) -> dict:
        """Keyword arguments of the ``NEURONS[neuron]`` module."""
        return dict(
            tau=self.tau,
            v_threshold=v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            surrogate=get(self.surrogate),
        )

    def spikes(self, x: jax.Array, name: str, v_threshold: float = 1.0) -> jax.Array:
        """Spikes of a neuron submodule named ``name`` over the leading (time) axis of ``x``; call it
        inside a compact ``__call__``."""
        return NEURONS[self.neuron](**self.neuron_kwargs(v_threshold), name=name)(x)

    def encoder(self, features: int, dtype=None, name: str = "encoder", **geometry) -> nn.Module:
        """The model's ``TemporalEncoder`` with stem width ``features``; ``geometry``: the LC conv's
        ``lc_kernel_size``/``lc_strides``/``lc_padding`` and ``bn_momentum``/``bn_epsilon``."""
        return TemporalEncoder(
            kind=self.encoding,
            T=self.T,
            features=features,
            learnable_threshold=self.learnable_threshold,
            learnable_conv=self.learnable_conv,
            surrogate_gradient=self.surrogate_gradient,
            lc_channels=self.lc_channels,
            surrogate=get(self.surrogate),
            neuron=self.neuron,
            neuron_kwargs=self.neuron_kwargs(),
            dtype=dtype,
            name=name,
            **geometry,
        )
