"""QKFormer for CIFAR (official ``cifar10/model.py``; docs/qkformer.md), time-major ``[T, B, H, W, C]``.

    encoder        TemporalEncoder: images [B, H, W, 3] -> spikes [T, B, H, W, D/8] with LC on (it owns
                   PatchEmbedInit's proj_conv/proj_bn and replaces proj_lif), [T, B, H, W, 3] with LC off
    patch_embed1   PatchEmbedInit(D/4):      -> [T, B, H, W, D/4]     (with LC off it starts with proj conv-BN-LIF)
    stage1_0       Q-K token attention block (D/4)
    patch_embed2   PatchEmbeddingStage(D/2): -> [T, B, H/2, W/2, D/2]
    stage2_0       Q-K token attention block (D/2)
    patch_embed3   PatchEmbeddingStage(D):   -> [T, B, H/4, W/4, D]
    stage3_i       SSA blocks (D), i = 0 .. L-3
    head           logits = Linear(mean over T, H, W)

Every "conv -> BN -> LIF" folds time into the batch (shared BN statistics). The residual stream is the
SEW "ADD" sum of spikes (integer valued, no BN or LIF after the sums).
"""

from __future__ import annotations

import math
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import Accepts, check, check_dtype, is_int
from snnjax.layers import fold_time, unfold_time
from snnjax.models.spiking import SpikingConfig, Units
from snnjax.neurons import LIF, lif, record_neuron, wants_membrane

SSA_SCALE = 0.125  # the official constant, not head_dim ** -0.5
ATTN_THRESHOLD = 0.5  # V_th of the two attention LIFs
# timm's trunc_normal_(std=.02) truncates at ±2 absolute = ±100 std, i.e. effectively a plain normal.
head_init = nn.initializers.truncated_normal(0.02, lower=-100.0, upper=100.0)


class PatchEmbedInit(nn.Module):
    """out = LIF(BN(conv3×3(a))) + LIF(BN(conv1×1(a))), a = LIF(BN(conv3×3(x))) (§1.2), width ``features``.

    With ``stem=False`` the input already is ``a`` (the temporal encoder owns proj_conv/proj_bn/proj_lif).
    """

    features: int
    units: Units
    stem: bool

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        units = self.units
        if self.stem:
            x = units.conv_bn_neuron(x, self.features // 2, "proj", train, kernel=3)
        main = units.conv_bn_neuron(x, self.features, "proj1", train, kernel=3)
        return main + units.conv_bn_neuron(x, self.features, "proj_res", train, kernel=1)


class PatchEmbeddingStage(nn.Module):
    """Halves H and W (§1.3): out = LIF(pool(BN(conv3×3(LIF(BN(conv3×3(x))))))) + LIF(BN(conv1×1/s2(x)))."""

    features: int
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        units = self.units
        a = units.conv_bn_neuron(x, self.features, "proj3", train, kernel=3)
        main = units.conv_bn_neuron(a, self.features, "proj4", train, kernel=3, pool=True)
        return main + units.conv_bn_neuron(x, self.features, "proj_res", train, kernel=1, strides=2)


class TokenQKAttention(nn.Module):
    """Q-K token attention (§1.4): A = LIF_0.5(Σ_{j in head} Q_j) per token, out = LIF(BN(proj(A ⊙ K))).

    Q, K = LIF(BN(1×1 conv(x))); A: [T, B, H, W, heads] is a binary mask over the tokens of each head.
    """

    num_heads: int
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        units = self.units
        C = x.shape[-1]
        heads = x.shape[:-1] + (self.num_heads, C // self.num_heads)
        q = units.conv_bn_neuron(x, C, "q", train).reshape(heads)
        k = units.conv_bn_neuron(x, C, "k", train).reshape(heads)
        mask = units.neuron(jnp.sum(q, axis=-1), "attn_lif", ATTN_THRESHOLD)
        y = (mask[..., None] * k).reshape(x.shape)
        return units.conv_bn_neuron(y, C, "proj", train, use_bias=True)


class MergedTimeBatchLIF(LIF):
    """The official SSA ``proj_lif``: a LIF scanned over the merged T·B axis of ``x [T, B, ...]`` (the
    membrane leaks from one sample into the next); returns ``[T, B, ...]`` and sows per-example rates."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        settings = dict(tau=self.tau, v_threshold=self.v_threshold, v_reset=self.v_reset, decay_input=self.decay_input)
        merged = lif(
            fold_time(x),
            **settings,
            detach_reset=self.detach_reset,
            surrogate=self.surrogate,
            return_v=wants_membrane(self),
            unroll=self.unroll,
        )
        return record_neuron(self, jax.tree.map(lambda a: unfold_time(a, x.shape[0]), merged))


class SpikingSelfAttention(nn.Module):
    """Spikformer SSA (§1.6): out = LIF(BN(proj(LIF_0.5(0.125 · Q (Kᵀ V))))) per head, no softmax.

    ``official_scan`` reproduces the official proj_lif, which scans over the merged T·B axis (the
    membrane leaks across the samples of a batch); with one sample it equals the correct LIF.
    """

    num_heads: int
    units: Units
    official_scan: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        units = self.units
        T, B, H, W, C = x.shape
        heads = (T, B, H * W, self.num_heads, C // self.num_heads)
        q, k, v = (units.conv_bn_neuron(x, C, name, train).reshape(heads) for name in ("q", "k", "v"))
        kv = jnp.einsum("tbnhd,tbnhe->tbhde", k, v)
        s = jnp.einsum("tbnhd,tbhde->tbnhe", q, kv) * SSA_SCALE
        a = units.neuron(s.reshape(x.shape), "attn_lif", ATTN_THRESHOLD)
        p = units.conv_bn(a, C, "proj", train, use_bias=True)
        if self.official_scan:
            return MergedTimeBatchLIF(**units.spiking.neuron_kwargs(), name="proj_lif")(p)
        return units.neuron(p, "proj_lif")


class MLP(nn.Module):
    """out = LIF(BN(conv1×1(LIF(BN(conv1×1(x)))))), widths C -> ``hidden`` -> C, convs with bias (§1.5)."""

    hidden: int
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        units = self.units
        h = units.conv_bn_neuron(x, self.hidden, "mlp1", train, use_bias=True)
        return units.conv_bn_neuron(h, x.shape[-1], "mlp2", train, use_bias=True)


class Block(nn.Module):
    """x = x + attention(x); x = x + MLP(x). Token Q-K attention ("tssa") or SSA ("ssa")."""

    token_attention: bool
    num_heads: int
    mlp_ratio: float
    units: Units
    official_ssa_scan: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.token_attention:
            attention = TokenQKAttention(self.num_heads, self.units, name="tssa")
        else:
            attention = SpikingSelfAttention(self.num_heads, self.units, self.official_ssa_scan, name="ssa")
        x = x + attention(x, train)
        return x + MLP(int(x.shape[-1] * self.mlp_ratio), self.units, name="mlp")(x, train)


class QKFormer(nn.Module):
    """QKFormer-L-D for CIFAR-sized images: ``x`` normalised images ``[B, H, W, C]`` -> logits ``[B, classes]``.

    Stage widths D/4, D/2, D with ``num_heads`` heads each; stages 1-2 hold one Q-K token attention
    block, stage 3 holds L-2 SSA blocks. ``spiking`` sets the temporal encoder and every neuron; its
    default (direct encoding with LC, LIF neurons) is the official model. ``dtype`` is the compute dtype
    (params stay float32; logits are float32). Firing rates are sown into ``firing_rates``; ``poisson``
    draws from the ``encoding`` rng stream.
    """

    embed_dim: int = 256
    depth: int = 3
    num_classes: int = 10
    mlp_ratio: float = 4.0
    num_heads: int = 8
    spiking: SpikingConfig = SpikingConfig()
    official_ssa_scan: bool = False
    dtype: Any = None

    def _validate(self, x: jax.Array) -> None:
        check(is_int(self.num_heads) and self.num_heads >= 1, "num_heads", self.num_heads, "an int >= 1")
        multiple = math.lcm(8, 4 * self.num_heads)
        check(
            is_int(self.embed_dim) and self.embed_dim > 0 and self.embed_dim % multiple == 0,
            "embed_dim",
            self.embed_dim,
            f"a positive multiple of {multiple} (D/4 split into {self.num_heads} heads, D/8 stem)",
        )
        check(is_int(self.depth) and self.depth >= 2, "depth", self.depth, "an int >= 2")
        check(is_int(self.num_classes) and self.num_classes >= 1, "num_classes", self.num_classes, "an int >= 1")
        check(
            isinstance(self.mlp_ratio, (int, float)) and int(self.embed_dim // 4 * self.mlp_ratio) >= 1,
            "mlp_ratio",
            self.mlp_ratio,
            "a number > 0 with int(embed_dim / 4 * mlp_ratio) >= 1",
        )
        check(isinstance(self.spiking, SpikingConfig), "spiking", self.spiking, "a SpikingConfig")
        check(isinstance(self.official_ssa_scan, bool), "official_ssa_scan", self.official_ssa_scan, "True or False")
        check(
            not self.official_ssa_scan or self.spiking.neuron == "lif",
            "official_ssa_scan",
            self.official_ssa_scan,
            "True only with neuron='lif' (the learnable LIF has per-time-step params, the bug scans T·B steps)",
        )
        check_dtype(self.dtype)
        check(x.ndim == 4, "x", x.shape, "images [B, H, W, C]")

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        self._validate(x)
        units = Units(self.spiking, self.dtype)
        D = self.embed_dim
        block = dict(num_heads=self.num_heads, mlp_ratio=self.mlp_ratio, units=units)
        x = self.spiking.encoder(D // 8, self.dtype)(x, train)
        x = PatchEmbedInit(D // 4, units, stem=not self.spiking.learnable_conv, name="patch_embed1")(x, train)
        x = Block(token_attention=True, **block, name="stage1_0")(x, train)
        x = PatchEmbeddingStage(D // 2, units, name="patch_embed2")(x, train)
        x = Block(token_attention=True, **block, name="stage2_0")(x, train)
        x = PatchEmbeddingStage(D, units, name="patch_embed3")(x, train)
        for i in range(self.depth - 2):
            x = Block(token_attention=False, **block, official_ssa_scan=self.official_ssa_scan, name=f"stage3_{i}")(
                x, train
            )
        features = jnp.mean(x, axis=(0, 2, 3), dtype=jnp.float32)
        return nn.Dense(self.num_classes, kernel_init=head_init, name="head")(features)


def _depth_and_width(name) -> tuple[int, int] | None:
    match = re.fullmatch(r"(\d+)-(\d+)", name) if isinstance(name, str) else None
    if match is None or int(match[1]) < 2 or int(match[2]) < 32 or int(match[2]) % 32:
        return None
    return int(match[1]), int(match[2])


MODEL_NAME = Accepts(
    lambda name: _depth_and_width(name) is not None,
    "'L-D' with depth L >= 2 and embed_dim D a multiple of 32, e.g. '3-256' (paper) or '4-384' (official CIFAR config)",
)


def qkformer(name: str, **kwargs) -> QKFormer:
    """QKFormer named "L-D" (depth L >= 2, embed_dim D a multiple of 32), e.g. "3-256" or "4-384"."""
    MODEL_NAME("model", name)
    depth, width = _depth_and_width(name)
    return QKFormer(embed_dim=width, depth=depth, **kwargs)
