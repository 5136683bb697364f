"""A plain-PyTorch YOLOv5n (YOLOv5 v7.0's yolov5n.yaml, width 0.25, depth 0.33), written from the
architecture notes (docs/yolov5n.md §1) as an independent reference for the weight import.

Module names reproduce ultralytics' state_dict names (``model.{i}.conv``, ``model.{i}.m.{j}.cv1``,
``model.24.m.{l}``, the ``model.24.anchors`` buffer in grid units). ``forward`` returns the raw Detect
outputs before decoding: per level ``(B, 3, ny, nx, 5 + nc)``.
"""

import math

import torch
from torch import nn

WIDTH, DEPTH = 0.25, 0.33
STRIDES = (8, 16, 32)
ANCHOR_PIXELS = ((10, 13, 16, 30, 33, 23), (30, 61, 62, 45, 59, 119), (116, 90, 156, 198, 373, 326))
# yolov5n.yaml before scaling: (inputs, repeats, block, arguments); Conv (channels, kernel, stride[, padding]),
# C3 (channels, shortcut), SPPF (channels, pool kernel)
LAYERS = (
    (-1, 1, "Conv", (64, 6, 2, 2)),
    (-1, 1, "Conv", (128, 3, 2)),
    (-1, 3, "C3", (128, True)),
    (-1, 1, "Conv", (256, 3, 2)),
    (-1, 6, "C3", (256, True)),
    (-1, 1, "Conv", (512, 3, 2)),
    (-1, 9, "C3", (512, True)),
    (-1, 1, "Conv", (1024, 3, 2)),
    (-1, 3, "C3", (1024, True)),
    (-1, 1, "SPPF", (1024, 5)),
    (-1, 1, "Conv", (512, 1, 1)),
    (-1, 1, "Upsample", None),
    ((-1, 6), 1, "Concat", None),
    (-1, 3, "C3", (512, False)),
    (-1, 1, "Conv", (256, 1, 1)),
    (-1, 1, "Upsample", None),
    ((-1, 4), 1, "Concat", None),
    (-1, 3, "C3", (256, False)),
    (-1, 1, "Conv", (256, 3, 2)),
    ((-1, 14), 1, "Concat", None),
    (-1, 3, "C3", (512, False)),
    (-1, 1, "Conv", (512, 3, 2)),
    ((-1, 10), 1, "Concat", None),
    (-1, 3, "C3", (1024, False)),
    ((17, 20, 23), 1, "Detect", None),
)


def width(channels: int) -> int:
    """Channels × 0.25, rounded up to a multiple of 8."""
    return math.ceil(channels * WIDTH / 8) * 8


def depth(repeats: int) -> int:
    return max(round(repeats * DEPTH), 1)


class Conv(nn.Module):
    """Conv2d (no bias, padding k//2 unless given) -> BatchNorm (eps 1e-3) -> SiLU."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, p: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)

    def forward(self, x):
        return nn.functional.silu(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int, shortcut: bool):
        super().__init__()
        self.cv1, self.cv2, self.shortcut = Conv(c, c), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.shortcut else y


class C3(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int, shortcut: bool):
        super().__init__()
        half = c_out // 2
        self.cv1, self.cv2, self.cv3 = Conv(c_in, half), Conv(c_in, half), Conv(2 * half, c_out)
        self.m = nn.Sequential(*(Bottleneck(half, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat([self.m(self.cv1(x)), self.cv2(x)], 1))


class SPPF(nn.Module):
    def __init__(self, c_in: int, c_out: int, k: int):
        super().__init__()
        self.cv1, self.cv2, self.k = Conv(c_in, c_in // 2), Conv(2 * c_in, c_out), k

    def forward(self, x):
        ys = [self.cv1(x)]
        for _ in range(3):
            ys.append(nn.functional.max_pool2d(ys[-1], self.k, 1, self.k // 2))
        return self.cv2(torch.cat(ys, 1))


class Concat(nn.Module):
    def forward(self, xs):
        return torch.cat(xs, 1)


class Detect(nn.Module):
    def __init__(self, num_classes: int, channels: list[int]):
        super().__init__()
        self.outputs = 5 + num_classes
        anchors = torch.tensor(ANCHOR_PIXELS, dtype=torch.float32).view(3, 3, 2)
        self.register_buffer("anchors", anchors / torch.tensor(STRIDES, dtype=torch.float32).view(3, 1, 1))
        self.m = nn.ModuleList(nn.Conv2d(c, 3 * self.outputs, 1) for c in channels)

    def forward(self, levels):
        raw = []
        for conv, x in zip(self.m, levels):
            y = conv(x)
            b, _, ny, nx = y.shape
            raw.append(y.view(b, 3, self.outputs, ny, nx).permute(0, 1, 3, 4, 2))
        return raw


class YOLOv5n(nn.Module):
    """Images ``(B, 3, H, W)`` -> the three raw Detect levels."""

    def __init__(self, num_classes: int):
        super().__init__()
        channels, layers = [], []  # channels[i]: what layer i puts out
        for inputs, repeats, block, args in LAYERS:
            c_in = channels[-1] if channels else 3
            c_out = c_in
            if block == "Conv":
                c_out, kernel, stride, *padding = args
                c_out = width(c_out)
                layer = Conv(c_in, c_out, kernel, stride, *padding)
            elif block == "C3":
                c_out = width(args[0])
                layer = C3(c_in, c_out, depth(repeats), args[1])
            elif block == "SPPF":
                c_out = width(args[0])
                layer = SPPF(c_in, c_out, args[1])
            elif block == "Upsample":
                layer = nn.Upsample(scale_factor=2, mode="nearest")
            elif block == "Concat":
                c_out = sum(c_in if j == -1 else channels[j] for j in inputs)
                layer = Concat()
            else:
                layer = Detect(num_classes, [channels[j] for j in inputs])
            channels.append(c_out)
            layers.append(layer)
        self.model = nn.ModuleList(layers)

    def forward(self, x):
        outputs = []
        for (inputs, _, _, _), layer in zip(LAYERS, self.model):
            if isinstance(inputs, tuple):
                x = layer([x if j == -1 else outputs[j] for j in inputs])
            else:
                x = layer(x)
            outputs.append(x)
        return x


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random conv weights and biases, BN affine parameters and running statistics; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.uniform_(-1, 1, generator=generator).mul_(math.sqrt(3.0 / fan_in))
                if module.bias is not None:
                    module.bias.normal_(0, 0.5, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.num_batches_tracked.fill_(100)
    return model.eval()
