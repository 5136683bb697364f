"""What the spiking models share: their spiking settings and the builder of their conv → BN → neuron units.

One frozen :class:`SpikingConfig` travels unchanged from the experiment flags through the saved run
config (``config.json``) into QKFormer and YOLOv5n, so every spiking model is configured the same way;
:class:`Units` builds both models' layers from it (docs/neurons.md, docs/encoding.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax

from snnjax.checks import BOOL, Accepts, check, integer, number, optional
from snnjax.encoding import KINDS, TemporalEncoder
from snnjax.layers import ConvBN, sew
from snnjax.neurons import NEURONS, make_neuron
from snnjax.settings import Settings, setting
from snnjax.surrogate import SURROGATES, SurrogateLike, get


def _is_surrogate(value: Any) -> bool:
    try:
        get(value)
    except (ValueError, TypeError):
        return False
    return True


SURROGATE_NAMES = (*SURROGATES, "none")


@dataclasses.dataclass(frozen=True)
class SpikingConfig(Settings):
    """Temporal encoder and neuron settings of a spiking model.

    Encoder (docs/encoding.md): ``T`` time steps, ``encoding`` in ``KINDS``, learnable threshold (LT),
    learnable conv (LC), surrogate gradient through the encoder's spikes (SG), ``lc_channels`` (the LC
    conv's width; None: the model's stem width). Neurons (docs/neurons.md), everywhere in the model:
    ``neuron`` "lif" or "learnable" (eq. 4), membrane constant ``tau``, ``v_reset`` (None: soft reset),
    ``detach_reset`` and ``surrogate`` (a name such as "sigmoid", "none", or a Surrogate instance), and
    ``unroll`` (time steps per iteration of their scan: compile time against speed).
    ``bn_scale``: the initial scale γ of the BatchNorm in front of every neuron after the encoder (PyTorch's 1
    by default; with γ = τ·V_th = 2 the first step's membrane X/τ reaches the threshold one standard deviation
    above the mean, and the surrogate passes as much gradient through depth as an ANN's BN+SiLU). The
    encoder's LC BatchNorm keeps γ = 1, so every encoding sees the same input. Names rather than objects keep
    a config JSON-ready.
    """

    T: int = setting(4, "time steps", accepts=integer(1))
    encoding: str = setting("direct", "temporal encoding of the static image", choices=KINDS)
    learnable_threshold: bool = setting(
        True, "learnable encoder threshold θ_0 and decay λ (LT)", flag="lt", accepts=BOOL
    )
    learnable_conv: bool = setting(
        True, "the encoder owns the first conv+BN (learnable conv, LC); 'direct' needs it", flag="lc", accepts=BOOL
    )
    surrogate_gradient: bool = setting(
        True, "surrogate gradient through the encoder's spikes (SG)", flag="sg", accepts=BOOL
    )
    lc_channels: int | None = setting(
        None, "width of the LC conv", accepts=optional(integer(1), "the model's stem width")
    )
    neuron: str = setting("lif", "LIF, or learnable LIF (paper eq. 4)", choices=tuple(NEURONS))
    tau: float = setting(2.0, "membrane time constant τ of every neuron", accepts=number(1, low_open=True))
    v_reset: float | None = setting(
        0.0, "reset potential of the hard reset", accepts=optional(number(), "soft reset: subtract V_th")
    )
    detach_reset: bool = setting(True, "no gradient through the reset", accepts=BOOL)
    surrogate: SurrogateLike = setting(
        "sigmoid",
        "surrogate gradient of every neuron",
        choices=SURROGATE_NAMES,
        accepts=Accepts(_is_surrogate, f"a surrogate name ({', '.join(SURROGATE_NAMES)}) or a Surrogate instance"),
    )
    unroll: int | None = setting(
        None,
        "time steps per iteration of every neuron's scan: 1 compiles about twice as fast, none runs fastest "
        "(same results)",
        accepts=optional(integer(1), "min(T, 8)"),
    )
    bn_scale: float = setting(
        1.0,
        "initial BatchNorm scale γ in front of every neuron after the encoder (1: PyTorch's; 2 = τ·V_th)",
        accepts=number(0, low_open=True),
    )

    def validate(self) -> None:
        check(
            self.encoding != "direct" or self.learnable_conv,
            "learnable_conv",
            self.learnable_conv,
            "True with encoding='direct' (it feeds the first conv's output to a LIF)",
        )

    def tag(self) -> str:
        """``<encoding>[+lt][+lc][+sg]_T<T>_<neuron>[_bn<bn_scale>]``, for run folder names (the BN scale
        only when it is not 1)."""
        flags = (("lt", self.learnable_threshold), ("lc", self.learnable_conv), ("sg", self.surrogate_gradient))
        switches = "".join(f"+{name}" for name, on in flags if on)
        bn = "" if self.bn_scale == 1 else f"_bn{self.bn_scale:g}"
        return f"{self.encoding}{switches}_T{self.T}_{self.neuron}{bn}"

    def neuron_kwargs(self, v_threshold: float = 1.0) -> dict:
        """Keyword arguments of the ``NEURONS[neuron]`` module."""
        return dict(
            tau=self.tau,
            v_threshold=v_threshold,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            surrogate=get(self.surrogate),
            unroll=self.unroll,
        )

    def spikes(self, x: jax.Array, name: str, v_threshold: float = 1.0) -> jax.Array:
        """Spikes of a neuron submodule named ``name`` over the leading (time) axis of ``x``; call it
        inside a compact ``__call__``."""
        return make_neuron(self.neuron, **self.neuron_kwargs(v_threshold), name=name)(x)

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


@dataclasses.dataclass(frozen=True)
class Units:
    """How a model builds its units act(BN(conv(x))) over time-folded ``[T, B, H, W, C]`` and joins its
    residuals: the configured neuron and the SEW function ``sew`` (``spiking`` set), or SiLU and
    ``x + y`` (``spiking=None``, an ANN). BatchNorms use ``bn_momentum``/``bn_epsilon`` (Flax's convention)
    and start at γ = ``spiking.bn_scale`` (1 in an ANN).

    Its helpers create Linen submodules, so call them inside a compact ``__call__``.
    """

    spiking: SpikingConfig | None = SpikingConfig()
    dtype: Any = None
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    sew: str = "add"

    def neuron(self, x: jax.Array, name: str, v_threshold: float = 1.0) -> jax.Array:
        """Spikes of the configured neuron named ``name`` over the leading (time) axis (SiLU in an ANN)."""
        return nn.silu(x) if self.spiking is None else self.spiking.spikes(x, name, v_threshold)

    def conv_bn(
        self,
        x: jax.Array,
        features: int,
        name: str,
        train: bool,
        *,
        kernel: int = 1,
        strides: int = 1,
        padding: int | None = None,
        use_bias: bool = False,
        pool: bool = False,
    ) -> jax.Array:
        """``ConvBN`` named ``name`` (PyTorch's ``{name}.conv``/``{name}.bn``), padding ``kernel // 2``
        unless given, time folded into the batch."""
        return ConvBN(
            features,
            (kernel, kernel),
            (strides, strides),
            padding=kernel // 2 if padding is None else padding,
            use_bias=use_bias,
            pool=pool,
            bn_momentum=self.bn_momentum,
            bn_epsilon=self.bn_epsilon,
            bn_scale_init=1.0 if self.spiking is None else self.spiking.bn_scale,
            dtype=self.dtype,
            name=name,
        )(x, train)

    def conv_bn_neuron(self, x: jax.Array, features: int, name: str, train: bool, **conv) -> jax.Array:
        """neuron(BN(conv(x))), the neuron named ``{name}_lif``; ``conv``: :meth:`conv_bn`'s options."""
        return self.neuron(self.conv_bn(x, features, name, train, **conv), f"{name}_lif")

    def residual(self, branch: jax.Array, x: jax.Array) -> jax.Array:
        """The SEW connect g(branch, x) (spiking), or x + branch (ANN)."""
        return x + branch if self.spiking is None else sew(branch, x, self.sew)
