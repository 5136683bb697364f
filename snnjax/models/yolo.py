"""YOLOv5n v7.0 (width 0.25, depth 0.33; docs/yolov5n.md §1) as an ANN or a spiking "SEW-YOLOv5n" (§5.5).

Activations are time-major ``[T, B, H, W, C]`` in both modes (the ANN runs with T = 1); every conv and BN
folds time into the batch, so BN statistics are shared over time steps.

    ann   unit = SiLU(BN(conv(x))), residual x + branch (YOLOv5 exactly)
    snn   unit = LIF(BN(conv(x))), residual g(branch, x) with the SEW function g = ADD | AND | IAND;
          the input stage is the TemporalEncoder, which owns layer 0's conv+BN (the LC conv)

    layer  0-9    backbone: Conv 6×6/2, Conv 3×3/2 + C3 (×4 stages, residual bottlenecks), SPPF
    layer 10-23   PAN head: Conv 1×1, upsample, concat, C3 (no residual); P3/8, P4/16, P5/32 at 17, 20, 23
    layer 24      Detect: 1×1 conv with bias per level, averaged over T -> [B, ny, nx, 3, 5 + nc]

Module names follow YOLOv5's ``model.{i}`` (``model_{i}``, ``cv1``, ``m_0``, ...); the SNN's layer 0 is
``encoder``. Firing rates are sown into ``firing_rates``; ``poisson`` draws from the ``encoding`` rng stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import check, check_dtype, is_int
from snnjax.convolution import conv_general_dilated
from snnjax.layers import SEW_MODES, fold_time, mean_over_time, torch_bias_init, torch_conv_init, unfold_time
from snnjax.models.spiking import SpikingConfig, Units
from snnjax.pooling import max_pool

MODES = ("snn", "ann")
STRIDES = (8, 16, 32)
# Anchors (w, h) in input pixels, per level P3/8, P4/16, P5/32 (§1.3); not rescaled with the image size.
ANCHORS = np.array(
    [[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]], [[116, 90], [156, 198], [373, 326]]],
    dtype=np.float32,
)
NUM_ANCHORS = ANCHORS.shape[1]
# YOLOv5's initialize_weights: BN eps 1e-3, momentum 0.03 in PyTorch's convention = 0.97 in Flax's.
BN_MOMENTUM = 0.97
BN_EPSILON = 1e-3
# Layer 0: conv 6×6, stride 2, padding 2, 3 -> 16.
STEM_FEATURES, STEM_KERNEL, STEM_STRIDE, STEM_PADDING = 16, 6, 2, 2


def detect_bias_init(fan_in: int, stride: int, num_classes: int) -> Callable[..., jax.Array]:
    """PyTorch's U(±1/√fan_in), plus log(8/(640/s)²) on each obj bias and log(0.6/(nc − 0.99999)) on
    each class bias (YOLOv5's ``_initialize_biases``); channel a·(5 + nc) + k, k in (x, y, w, h, obj, cls…)."""
    offsets = np.zeros((NUM_ANCHORS, 5 + num_classes), np.float32)
    offsets[:, 4] = math.log(8.0 / (640.0 / stride) ** 2)
    offsets[:, 5:] = math.log(0.6 / (num_classes - 0.99999))
    default = torch_bias_init(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return default(key, shape, dtype) + jnp.asarray(offsets.reshape(-1), dtype)

    return init


def upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 upsampling of ``[..., H, W, C]``.

    Built from stacked copies, whose gradient adds slices; ``jnp.repeat``'s reduces a size-2 axis inside the
    array, which XLA's CPU backend ran 3-4× slower (docs/performance.md §11).
    """
    *lead, h, w, c = x.shape
    x = jnp.stack([x, x], axis=-2).reshape(*lead, h, 2 * w, c)
    return jnp.stack([x, x], axis=-3).reshape(*lead, 2 * h, 2 * w, c)


def decode(
    raw_levels: Sequence[jax.Array], anchors: np.ndarray | jax.Array = ANCHORS, strides: Sequence[int] = STRIDES
) -> jax.Array:
    """Raw levels ``[B, ny, nx, 3, 5+nc]`` -> boxes ``[B, N, 5+nc]`` in input pixels (§1.3), σ = sigmoid(raw):

        xy = (2σ_xy − 0.5 + (cx, cy))·stride,   wh = (2σ_wh)²·anchor,   obj = σ_obj,   cls = σ_cls

    N = Σ ny·nx·3, ordered by level, then row cy, column cx, anchor. ``anchors``: ``[levels, 3, 2]`` pixels.
    """
    anchors = jnp.asarray(anchors, jnp.float32)
    check(len(strides) == anchors.shape[0], "strides", strides, f"{anchors.shape[0]} strides, one per anchor set")
    check(len(raw_levels) == len(strides), "len(raw_levels)", len(raw_levels), f"{len(strides)}, one level per stride")
    boxes = []
    for raw, stride, level_anchors in zip(raw_levels, strides, anchors):
        p = jax.nn.sigmoid(raw.astype(jnp.float32))
        ny, nx = raw.shape[1:3]
        cells = jnp.stack(jnp.meshgrid(jnp.arange(nx), jnp.arange(ny)), axis=-1)[:, :, None, :]
        xy = (2.0 * p[..., :2] - 0.5 + cells) * stride
        wh = jnp.square(2.0 * p[..., 2:4]) * level_anchors
        boxes.append(jnp.concatenate([xy, wh, p[..., 4:]], axis=-1).reshape(raw.shape[0], -1, raw.shape[-1]))
    return jnp.concatenate(boxes, axis=1)


class Bottleneck(nn.Module):
    """y = cv2_3×3(cv1_1×1(x)), width c -> c -> c; out = residual(y, x) if ``shortcut`` else y."""

    shortcut: bool
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = x.shape[-1]
        y = self.units.conv_bn_neuron(self.units.conv_bn_neuron(x, c, "cv1", train), c, "cv2", train, kernel=3)
        return self.units.residual(y, x) if self.shortcut else y


class C3(nn.Module):
    """out = cv3(concat[m(cv1(x)), cv2(x)]): cv1, cv2 1×1 to c/2, m = ``depth`` bottlenecks, cv3 1×1 to c."""

    features: int
    depth: int
    shortcut: bool
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        hidden = self.features // 2
        y = self.units.conv_bn_neuron(x, hidden, "cv1", train)
        for i in range(self.depth):
            y = Bottleneck(self.shortcut, self.units, name=f"m_{i}")(y, train)
        y = jnp.concatenate([y, self.units.conv_bn_neuron(x, hidden, "cv2", train)], axis=-1)
        return self.units.conv_bn_neuron(y, self.features, "cv3", train)


class SPPF(nn.Module):
    """out = cv2(concat[y, p(y), p²(y), p³(y)]), y = cv1(x) at c_in/2, p = max-pool 5×5/1 pad 2."""

    features: int
    units: Units

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        pooled = [fold_time(self.units.conv_bn_neuron(x, x.shape[-1] // 2, "cv1", train))]
        for _ in range(3):
            pooled.append(max_pool(pooled[-1], (5, 5), (1, 1), ((2, 2), (2, 2))))
        y = unfold_time(jnp.concatenate(pooled, axis=-1), x.shape[0])
        return self.units.conv_bn_neuron(y, self.features, "cv2", train)


class Detect(nn.Module):
    """Per level: 1×1 conv (bias, PyTorch init, YOLOv5 bias offsets) averaged over T, reshaped to
    ``[B, ny, nx, 3, 5 + nc]`` float32. The conv is linear, so the mean over T is taken first (same result,
    T× fewer FLOPs)."""

    num_classes: int
    dtype: Any = None

    @nn.compact
    def __call__(self, levels: Sequence[jax.Array]) -> tuple[jax.Array, ...]:
        outputs = []
        for i, (x, stride) in enumerate(zip(levels, STRIDES)):
            x = mean_over_time(x)
            y = nn.Conv(
                NUM_ANCHORS * (5 + self.num_classes),
                (1, 1),
                kernel_init=torch_conv_init,
                bias_init=detect_bias_init(x.shape[-1], stride, self.num_classes),
                dtype=self.dtype,
                conv_general_dilated=conv_general_dilated,
                name=f"m_{i}",
            )(x)
            outputs.append(y.reshape(y.shape[:-1] + (NUM_ANCHORS, 5 + self.num_classes)).astype(jnp.float32))
        return tuple(outputs)


class YOLOv5n(nn.Module):
    """YOLOv5n: images ``[B, H, W, 3]`` in [0, 1] (H, W multiples of 32) -> 3 raw levels
    ``[B, H/s, W/s, 3, 5 + nc]`` float32 for s = 8, 16, 32 (k order x, y, w, h, obj, cls…; see ``decode``).

    ``mode="ann"`` is the YOLOv5 baseline and ignores ``spiking`` and ``sew``. ``mode="snn"`` runs
    ``spiking.T`` steps with the temporal encoder as input stage (``spiking``'s encoding, LT, LC, SG and
    lc_channels as in docs/encoding.md), its neuron everywhere, the SEW function ``sew`` in the backbone
    bottlenecks and the Detect outputs averaged over T. ``dtype`` is the compute dtype (params stay float32).
    """

    num_classes: int = 20
    mode: str = "snn"
    spiking: SpikingConfig = SpikingConfig()
    sew: str = "add"
    dtype: Any = None

    def _validate(self, images: jax.Array) -> None:
        check(is_int(self.num_classes) and self.num_classes >= 1, "num_classes", self.num_classes, "an int >= 1")
        check(self.mode in MODES, "mode", self.mode, ", ".join(map(repr, MODES)))
        if self.mode == "snn":
            check(isinstance(self.spiking, SpikingConfig), "spiking", self.spiking, "a SpikingConfig")
            check(self.sew in SEW_MODES, "sew", self.sew, ", ".join(map(repr, SEW_MODES)))
        check_dtype(self.dtype)
        check(
            images.ndim == 4 and images.shape[1] % 32 == 0 and images.shape[2] % 32 == 0,
            "images",
            images.shape,
            "[B, H, W, C] with H and W multiples of 32",
        )

    def _stem(self, images: jax.Array, units: Units, train: bool) -> jax.Array:
        """Layer 0 (with the SNN's input stage): ``[B, H, W, 3] -> [T, B, H/2, W/2, C0]``."""
        conv0 = dict(kernel=STEM_KERNEL, strides=STEM_STRIDE, padding=STEM_PADDING)
        if units.spiking is None:
            return units.conv_bn_neuron(images[None], STEM_FEATURES, "model_0", train, **conv0)
        x = units.spiking.encoder(
            STEM_FEATURES,
            self.dtype,
            lc_kernel_size=(STEM_KERNEL, STEM_KERNEL),
            lc_strides=(STEM_STRIDE, STEM_STRIDE),
            lc_padding=STEM_PADDING,
            bn_momentum=BN_MOMENTUM,
            bn_epsilon=BN_EPSILON,
        )(images, train)
        if units.spiking.learnable_conv:
            return x
        return units.conv_bn_neuron(x, STEM_FEATURES, "model_0", train, **conv0)

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, ...]:
        self._validate(images)
        spiking = self.spiking if self.mode == "snn" else None
        u = Units(spiking, self.dtype, bn_momentum=BN_MOMENTUM, bn_epsilon=BN_EPSILON, sew=self.sew)
        x = self._stem(images, u, train)
        x = u.conv_bn_neuron(x, 32, "model_1", train, kernel=3, strides=2)
        x = C3(32, 1, True, u, name="model_2")(x, train)
        x = u.conv_bn_neuron(x, 64, "model_3", train, kernel=3, strides=2)
        x4 = C3(64, 2, True, u, name="model_4")(x, train)
        x = u.conv_bn_neuron(x4, 128, "model_5", train, kernel=3, strides=2)
        x6 = C3(128, 3, True, u, name="model_6")(x, train)
        x = u.conv_bn_neuron(x6, 256, "model_7", train, kernel=3, strides=2)
        x = C3(256, 1, True, u, name="model_8")(x, train)
        x = SPPF(256, u, name="model_9")(x, train)
        x10 = u.conv_bn_neuron(x, 128, "model_10", train)
        x = C3(128, 1, False, u, name="model_13")(jnp.concatenate([upsample(x10), x6], axis=-1), train)
        x14 = u.conv_bn_neuron(x, 64, "model_14", train)
        p3 = C3(64, 1, False, u, name="model_17")(jnp.concatenate([upsample(x14), x4], axis=-1), train)
        x = u.conv_bn_neuron(p3, 64, "model_18", train, kernel=3, strides=2)
        p4 = C3(128, 1, False, u, name="model_20")(jnp.concatenate([x, x14], axis=-1), train)
        x = u.conv_bn_neuron(p4, 128, "model_21", train, kernel=3, strides=2)
        p5 = C3(256, 1, False, u, name="model_23")(jnp.concatenate([x, x10], axis=-1), train)
        return Detect(self.num_classes, self.dtype, name="model_24")((p3, p4, p5))
