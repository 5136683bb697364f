"""Throughput benchmarks of snnjax, measured side by side with the reference implementations where installed.

    python experiments/benchmark.py lif                    # LIF forward+backward, T=4 × 16.8M neurons
    python experiments/benchmark.py lif --T 4 --N 1048576 --dtype bfloat16 --json lif.json
    python experiments/benchmark.py encoder                # every encoding, X [64, 32, 32, 32], T=4
    python experiments/benchmark.py qkformer               # 3-256 and 4-384, batch 64/256, fp32/bf16
    python experiments/benchmark.py qkformer --models 3-256 --batch_sizes 16 --dtypes float32 --steps 3 \\
        --official_model ~/src/QKFormer/cifar10/model.py   # and the official PyTorch model, same shapes
    python experiments/benchmark.py conv                   # QKFormer's 3×3 convs: XLA and PyTorch
    python experiments/benchmark.py compare --official_model ~/src/QKFormer/cifar10/model.py  # the GPU table

``lif`` times one forward + backward pass of a multi-step LIF (QKFormer's settings: τ=2, hard reset,
detach_reset, sigmoid surrogate) over ``[T, N]``: elements/s and the effective memory bandwidth, counting
the four tensors of T·N elements that any implementation must move (read x, write spikes, read the spike
cotangent, write the input gradient). SpikingJelly's multi-step LIF runs in the same process when
installed, in either of its module layouts (``spikingjelly.activation_based`` or the older
``spikingjelly.clock_driven``); the table names the layout and backend that ran.

``encoder`` times one forward + backward pass (gradients to X, θ_0 and λ) of each temporal encoding of
``snnjax.encoding`` over X ``[batch, size, size, channels]``, counting the (2T + 2)·N elements any
implementation must move (read X, write the spikes, read their cotangent, write X's gradient). Where
SpikingJelly is installed, the same equations written in PyTorch (a loop over t with SpikingJelly's sigmoid
surrogate; the paper's code is not public) run beside it on the same inputs.

``qkformer`` and ``yolo`` time the real train steps of the CIFAR and VOC tasks. ``qkformer``: the CIFAR
step (``snnjax.tasks.classification.task``: on-device batch gather, forward, soft-target cross-entropy,
backward, AdamW; direct encoding, standard LIF, official settings, no augmentation) and the eval step on
32×32 images. With ``--official_model PATH`` (the ``cifar10/model.py`` of your own checkout of the
official QKFormer repository) it also builds that model at the same size, T, class count and batch and
times its train step (forward, cross-entropy, backward, AdamW, ``reset_net``) and no-grad eval step in
this process, with AMP for 16-bit rows on CUDA, and prints the measured ratio.
``yolo``: the detection step (YOLOv5 loss, SGD with accumulation, EMA) on random 20-class batches and, as
eval, the jitted model + decode + NMS; it needs neither OpenCV nor a dataset. It then times the host
pipeline that feeds training (mosaic, affine, HSV, flip on the worker threads of
``snnjax.tasks.detection.data``) on synthetic images, when OpenCV is installed.

``conv`` times the forward pass, the input gradient and the weight gradient of 3×3 'SAME' convolutions
(default: QKFormer-3-256's, batch 64 = T·B) in XLA, as the models run them, and, where torch is
installed, in PyTorch (``conv2d`` and ``torch.nn.grad``, NCHW as the official models run), to show where
a model's step time goes convolution by convolution.

``compare`` is the whole comparison in one run, sized to finish within ten minutes on one H100/H200:
the LIF pass (with the bytes it must move and the share of the device's bandwidth it reaches) against
SpikingJelly's, the phase and TTFS encoders (``--encodings``) on the first configuration's learnable-conv
output against their PyTorch reference, and QKFormer's train and eval steps in bf16 at the official
figures' sizes against the official model (``--official_model``); where a reference is not installed it
falls back to the official code's stored H200 figures (the encoders have none) and says so. It ends with
one summary table, the one the README shows.

Every row reports the first call apart (for a jitted step: compilation plus one run), the median step
time, memory (XLA's analysis of the compiled step; the device's peak where the backend reports it) and,
for jitted steps, the FLOP/s and bytes/s achieved by XLA's cost analysis of the step, as a share of the
device's limits where they are known. ``--json PATH`` writes every row as JSON too.

Like every snnjax program it first restarts itself with huge pages for its heap (docs/performance.md §7.1;
``SNNJAX_HUGEPAGES=0`` declines); both implementations run in this one process, so under the same
setting, which the first line of output and the JSON (``host_hugepages``) name.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import Accepts, check_args, integer
from snnjax.cli.hugepages import hugepages_in_use, restart_with_hugepages
from snnjax.encoding import KINDS, encode
from snnjax.neurons import lif
from snnjax.surrogate import Sigmoid

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
BACKENDS = ("torch", "cupy")

# Spec-sheet dense peaks, matched in this order by substring of ``device_kind``: (16-bit tensor-core
# FLOP/s, TF32 tensor-core FLOP/s (JAX's default float32 matmul precision there), memory bytes/s).
DEVICE_LIMITS = (
    ("H200", 989e12, 495e12, 4.8e12),
    ("H100 PCIe", 756e12, 378e12, 2.0e12),
    ("H100 NVL", 835e12, 418e12, 3.9e12),
    ("H100", 989e12, 495e12, 3.35e12),
)


def device_limits(device_kind: str, dtype: str) -> tuple[float, float] | None:
    """(peak FLOP/s for ``dtype``, peak bytes/s) of a device in ``DEVICE_LIMITS``; None for others (CPUs)."""
    for name, half, tf32, bandwidth in DEVICE_LIMITS:
        if name in device_kind:
            return (tf32 if dtype == "float32" else half), bandwidth
    return None


def time_it(fn: Callable[[], object], repeats: int, warmup: int = 2, warmup_s: float = 0.0) -> float:
    """Median wall time in seconds of ``fn()`` (which must block until its result is ready) over ``repeats``
    calls, after at least ``warmup`` calls and, up to 50 calls, ``warmup_s`` seconds of them."""
    start, calls = time.perf_counter(), 0
    while calls < warmup or (time.perf_counter() - start < warmup_s and calls < 50):
        fn()
        calls += 1
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_peak_bytes() -> int | None:
    """Peak bytes in use on the first JAX device, where the backend reports it (GPU/TPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


class Step(NamedTuple):
    """One step to time: ``run()`` calls it once and blocks until done; for a jitted step, ``lower()``
    lowers it on the arguments of its next call (None for other code)."""

    run: Callable[[], object]
    lower: Callable[[], Any] | None = None


class Measured(NamedTuple):
    """One step's first call and median later call (seconds), with XLA's FLOPs, bytes accessed and memory
    footprint of the compiled step, and the device's peak bytes (None where unknown)."""

    first_call_s: float
    step_s: float
    flops: float | None = None
    bytes_accessed: float | None = None
    memory_bytes: int | None = None
    device_peak_bytes: int | None = None


def footprint(analysis) -> int | None:
    """Bytes a compiled step holds at its peak, from XLA's memory analysis: arguments + outputs +
    temporaries − aliased (None if unavailable)."""
    if analysis is None:
        return None
    return (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )


# Warm-up before timing a step: a millisecond step's first calls in a process ran up to 5× slower (fresh
# memory; the other implementation's idle threads still spinning).
WARMUP_S = 0.5


def measure(step: Step, repeats: int, device_peak: Callable[[], int | None] = device_peak_bytes) -> Measured:
    """Times ``step``'s first call apart from the median of ``repeats`` later calls (after at least one more
    warm-up call and ``WARMUP_S`` of them); a jitted step adds its compiled cost and memory analysis (the
    first call's compilation is reused)."""
    start = time.perf_counter()
    step.run()
    first_call_s = time.perf_counter() - start
    step_s = time_it(step.run, repeats, warmup=1, warmup_s=WARMUP_S)
    if step.lower is None:
        return Measured(first_call_s, step_s, device_peak_bytes=device_peak())
    compiled = step.lower().compile()
    cost = compiled.cost_analysis()
    cost = (cost[0] if cost else {}) if isinstance(cost, list) else (cost or {})
    return Measured(
        first_call_s,
        step_s,
        cost.get("flops"),
        cost.get("bytes accessed"),
        footprint(compiled.memory_analysis()),
        device_peak(),
    )


def phase_fields(phase: str, measured: Measured, items: int, limits: tuple[float, float] | None) -> dict:
    """A row's JSON fields for one timed step, prefixed ``<phase>_``: ``items`` (images or elements) per
    second and, where XLA's cost is known, achieved FLOP/s and bytes/s and their shares of ``limits``."""
    flop_rate = measured.flops / measured.step_s if measured.flops else None
    byte_rate = measured.bytes_accessed / measured.step_s if measured.bytes_accessed else None
    fields = {
        **measured._asdict(),
        "step_ms": measured.step_s * 1e3,
        "per_s": items / measured.step_s,
        "flop_per_s": flop_rate,
        "bytes_per_s": byte_rate,
        "flop_share": flop_rate / limits[0] if flop_rate and limits else None,
        "bandwidth_share": byte_rate / limits[1] if byte_rate and limits else None,
    }
    return {f"{phase}_{name}": value for name, value in fields.items()}


def si(value: float | None, unit: str) -> str:
    """``value`` with an SI prefix (``12.3 GFLOP/s``), or ``n/a``."""
    if value is None:
        return "n/a"
    for prefix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def achieved(row: dict, phase: str, kind: str) -> str:
    """A row's achieved FLOP/s (``kind="flop"``) or bytes/s (``"bandwidth"``) with its share of the limit."""
    rate = row[f"{phase}_flop_per_s" if kind == "flop" else f"{phase}_bytes_per_s"]
    if rate is None:
        return "n/a"
    share = row[f"{phase}_{kind}_share"]
    return si(rate, "FLOP/s" if kind == "flop" else "B/s") + (
        f" ({share:.1%})" if share is not None else " (limit n/a)"
    )


def memory_text(row: dict, phase: str) -> str:
    """``XLA footprint / device peak`` in GiB, each ``n/a`` where unknown."""
    return " / ".join(
        f"{row[f'{phase}_{name}'] / 2**30:.2f}" if row[f"{phase}_{name}"] is not None else "n/a"
        for name in ("memory_bytes", "device_peak_bytes")
    )


def write_json(path: str, args: argparse.Namespace, rows: list[dict]) -> None:
    """Writes the run's device, arguments and every row (ours and the reference's) to ``path``."""
    device = jax.devices()[0]
    payload = {
        "benchmark": args.benchmark,
        "device_kind": device.device_kind,
        "platform": device.platform,
        "jax": jax.__version__,
        "host_hugepages": hugepages_in_use(),
        "arguments": {name: value for name, value in vars(args).items() if name != "run"},
        "rows": rows,
    }
    with open(path, "w") as file:
        json.dump(payload, file, indent=1)
    print(f"\nwrote {len(rows)} rows to {path}")


class SpikingJelly(NamedTuple):
    """The installed SpikingJelly in one of its module layouts: ``layout`` is ``spikingjelly.activation_based``
    (``neuron.LIFNode(step_mode="m")``) or the older ``spikingjelly.clock_driven``
    (``neuron.MultiStepLIFNode``)."""

    layout: str
    version: str
    neuron: types.ModuleType
    surrogate: types.ModuleType
    reset_net: Callable[[Any], None]

    def multi_step(self, name: str, backend: str | None) -> Callable[..., Any]:
        """A constructor of the multi-step neuron ``name`` (``"LIF"``, ``"ParametricLIF"``) taking the
        neuron's keywords; any ``backend`` keyword is replaced by ``backend`` where the class has that option."""
        clock_driven = self.layout.endswith("clock_driven")

        def build(*args, **kwargs):
            cls = getattr(self.neuron, f"MultiStep{name}Node" if clock_driven else f"{name}Node")
            kwargs.pop("backend", None)
            if backend is not None and self.has_backends(cls):
                kwargs["backend"] = backend
            return cls(*args, **kwargs) if clock_driven else cls(*args, step_mode="m", **kwargs)

        return build

    @staticmethod
    def has_backends(cls: type) -> bool:
        """Whether the neuron class takes a ``backend`` (releases from 2.0 pick the kernel by device)."""
        return "backend" in inspect.signature(cls).parameters

    def describe(self, backend: str | None) -> str:
        """The version, layout and LIF backend, for the tables."""
        lif_class = self.neuron.MultiStepLIFNode if self.layout.endswith("clock_driven") else self.neuron.LIFNode
        kernel = f"backend={backend}" if self.has_backends(lif_class) else "kernel chosen by SpikingJelly per device"
        return f"SpikingJelly {self.version} {self.layout}, {kernel}"


SPIKINGJELLY_LAYOUTS = ("spikingjelly.activation_based", "spikingjelly.clock_driven")


def find_spikingjelly() -> SpikingJelly | None:
    """The installed SpikingJelly in the first layout of ``SPIKINGJELLY_LAYOUTS`` that imports; None without one."""
    for layout in SPIKINGJELLY_LAYOUTS:
        try:
            neuron, functional, surrogate = (
                importlib.import_module(f"{layout}.{name}") for name in ("neuron", "functional", "surrogate")
            )
        except ImportError:
            continue
        try:
            version = importlib.metadata.version("spikingjelly")
        except importlib.metadata.PackageNotFoundError:
            version = "(version unknown)"
        return SpikingJelly(layout, version, neuron, surrogate, functional.reset_net)
    return None


NO_SPIKINGJELLY = (
    "SpikingJelly is not installed (neither spikingjelly.activation_based nor spikingjelly.clock_driven imports)"
)


def default_backend(torch) -> str:
    """SpikingJelly's CuPy kernels on CUDA when CuPy is installed, else its PyTorch code."""
    return "cupy" if torch.cuda.is_available() and importlib.util.find_spec("cupy") else "torch"


def lif_bytes(T: int, N: int, dtype: str) -> int:
    """Bytes any LIF forward + backward over [T, N] must move: read x, write spikes, read their cotangent,
    write the input gradient."""
    return 4 * T * N * np.dtype(DTYPES[dtype]).itemsize


def snnjax_lif_step(T: int, N: int, dtype) -> Step:
    """One jitted LIF forward + backward over [T, N]."""
    key_x, key_g = jax.random.split(jax.random.PRNGKey(0))
    x = (jax.random.uniform(key_x, (T, N), jnp.float32) * 2.5).astype(dtype)
    g = jax.random.normal(key_g, (T, N), jnp.float32).astype(dtype)
    neuron = lambda x: lif(x, tau=2.0, v_reset=0.0, detach_reset=True, surrogate=Sigmoid())

    @jax.jit
    def forward_backward(x, g):
        spikes, vjp = jax.vjp(neuron, x)
        return spikes, vjp(g)[0]

    return Step(lambda: jax.block_until_ready(forward_backward(x, g)), lambda: forward_backward.lower(x, g))


def spikingjelly_lif_step(T: int, N: int, dtype: str, backend: str | None) -> tuple[Step, str, Callable] | None:
    """The same pass with SpikingJelly's multi-step LIF (``backend`` None: ``default_backend``), its
    description and a reader of the device's peak bytes; None when SpikingJelly is not installed."""
    sj = find_spikingjelly()
    if sj is None:
        return None
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    backend = backend or default_backend(torch)
    torch.set_num_threads(os.cpu_count() or 1)
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    node = sj.multi_step("LIF", backend)(
        tau=2.0, v_reset=0.0, detach_reset=True, surrogate_function=sj.surrogate.Sigmoid()
    ).to(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(T, N, generator=gen) * 2.5).to(device, tdtype).requires_grad_()
    g = torch.randn(T, N, generator=gen).to(device, tdtype)

    def step():
        x.grad = None
        sj.reset_net(node)
        node(x).backward(g)
        if device == "cuda":
            torch.cuda.synchronize()

    return Step(step), f"torch {torch.__version__} on {device}, {sj.describe(backend)}", torch_peak_bytes(torch)


def torch_peak_bytes(torch) -> Callable[[], int | None]:
    """A reader of PyTorch's peak CUDA allocation (None on the CPU)."""
    return torch.cuda.max_memory_allocated if torch.cuda.is_available() else lambda: None


def bench_lif(args: argparse.Namespace) -> None:
    elements = args.T * args.N
    limits = device_limits(jax.devices()[0].device_kind, args.dtype)
    steps = [
        (
            "snnjax",
            f"jax {jax.__version__} on {jax.devices()[0].platform}",
            snnjax_lif_step(args.T, args.N, DTYPES[args.dtype]),
            device_peak_bytes,
        )
    ]
    reference = spikingjelly_lif_step(args.T, args.N, args.dtype, args.backend)
    if reference is None:
        print(f"{NO_SPIKINGJELLY}: snnjax only (pip install torch spikingjelly to compare)")
    else:
        steps.append(("SpikingJelly", reference[1], reference[0], reference[2]))
    rows = []
    for name, backend, step, peak in steps:
        measured = measure(step, args.repeats, peak)
        row = {"implementation": name, "backend": backend, **phase_fields("pass", measured, elements, limits)}
        row["effective_bytes_per_s"] = lif_bytes(args.T, args.N, args.dtype) / measured.step_s
        rows.append(row)
    print(f"\nLIF forward+backward, T={args.T}, N={args.N:,}, {args.dtype}, median of {args.repeats}\n")
    print(
        "| implementation | backend | first call (s) | time (ms) | elements/s | effective GB/s | FLOP/s (of peak) "
        "| bytes/s (of peak) | memory GiB: XLA / device peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['implementation']} | {row['backend']} | {row['pass_first_call_s']:.2f} | "
            f"{row['pass_step_ms']:.2f} | {row['pass_per_s']:.3g} | {row['effective_bytes_per_s'] / 1e9:.1f} | "
            f"{achieved(row, 'pass', 'flop')} | {achieved(row, 'pass', 'bandwidth')} | {memory_text(row, 'pass')} |"
        )
    if len(rows) == 2:
        print(f"\nsnnjax is {rows[0]['pass_per_s'] / rows[1]['pass_per_s']:.2f}× SpikingJelly's throughput")
    if args.json:
        write_json(args.json, args, rows)


def encoder_bytes(T: int, N: int, dtype: str) -> int:
    """Bytes any encoder forward + backward of N inputs must move: read X, write the T·N spikes, read
    their cotangent, write X's gradient."""
    return (2 * T + 2) * N * np.dtype(DTYPES[dtype]).itemsize


def encoder_inputs(T: int, shape: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, ...]:
    """float32 X ~ U[0, 1.5) of ``shape`` (some inputs above θ_0 = 1, some below), a cotangent ``[T, *shape]``,
    θ_0 = 1 and λ = 0.5 per channel (the paper's initial values)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.5, shape).astype(np.float32)
    g = rng.standard_normal((T, *shape), dtype=np.float32)
    channels = shape[-1]
    return x, g, np.ones(channels, np.float32), np.full(channels, 0.5, np.float32)


def snnjax_encoder_step(kind: str, T: int, inputs: tuple[np.ndarray, ...], dtype: str) -> Step:
    """One jitted forward + backward of ``snnjax.encoding.encode`` to X, θ_0 and λ (straight-through for
    ``poisson``; ``direct`` has no thresholds)."""
    x, g, theta, lam = (jnp.asarray(a, DTYPES[dtype]) for a in inputs)
    key = jax.random.PRNGKey(0)

    def encoder(x, theta, lam):
        return encode(kind, x, T, threshold=theta, threshold_decay=lam, key=key)

    @jax.jit
    def forward_backward(x, theta, lam, g):
        spikes, vjp = jax.vjp(encoder, x, theta, lam)
        return spikes, vjp(g)

    return Step(
        lambda: jax.block_until_ready(forward_backward(x, theta, lam, g)),
        lambda: forward_backward.lower(x, theta, lam, g),
    )


def torch_encode(torch, kind: str, x, theta0, lam, T: int, spike: Callable):
    """The encoders as a PyTorch user writes them (no official code of the paper is public): X repeated
    T times, Bernoulli draws with a straight-through gradient, or a loop over t of S_t = spike(X_t − θ_t)
    with θ_t = θ_0 λ^(t−1) and X_{t+1} = X_t (rate), X_t − S_t θ_t (phase) or X_t (1 − S_t) (ttfs)."""
    if kind == "direct":
        return x.unsqueeze(0).repeat(T, *(1,) * x.dim())
    if kind == "poisson":
        p = x.clamp(0, 1)
        return p + (torch.bernoulli(p.expand(T, *p.shape)) - p).detach()
    thetas = theta0 * lam ** torch.arange(T, dtype=x.dtype, device=x.device)[:, None]
    spikes = []
    for theta in thetas:
        spikes.append(spike(x - theta))
        if kind == "phase":
            x = x - spikes[-1] * theta
        elif kind == "ttfs":
            x = x * (1 - spikes[-1])
    return torch.stack(spikes)


def torch_encoder_step(kind: str, T: int, inputs: tuple[np.ndarray, ...], dtype: str, sj: SpikingJelly) -> Step:
    """``torch_encode``'s forward + backward on the same inputs, with SpikingJelly's sigmoid surrogate (α = 4)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    tdtype = getattr(torch, dtype)
    x, g, theta, lam = (torch.from_numpy(a).to(device, tdtype) for a in inputs)
    leaves = [a.requires_grad_() for a in (x, theta, lam)]
    spike = sj.surrogate.Sigmoid(alpha=4.0)

    def step():
        for leaf in leaves:
            leaf.grad = None
        torch_encode(torch, kind, x, theta, lam, T, spike).backward(g)
        if device == "cuda":
            torch.cuda.synchronize()

    return Step(step)


def encoder_rows(
    encodings: list[str], T: int, shape: tuple[int, ...], dtype: str, repeats: int
) -> list[tuple[dict, dict | None]]:
    """Measures each encoding's pass in snnjax and, where SpikingJelly is installed, right after it in the
    PyTorch reference: one (ours, reference or None) pair of rows per encoding, each with the effective
    bytes/s of ``encoder_bytes``."""
    N = int(np.prod(shape))
    inputs = encoder_inputs(T, shape)
    limits = device_limits(jax.devices()[0].device_kind, dtype)
    implementations = [("snnjax", f"jax {jax.__version__}", snnjax_encoder_step, device_peak_bytes)]
    sj = find_spikingjelly()
    if sj is None:
        print(f"{NO_SPIKINGJELLY}: snnjax's encoders only (pip install torch spikingjelly to compare)")
    else:
        import torch

        backend = f"torch {torch.__version__}, loop over t, {sj.layout}.surrogate.Sigmoid"
        build = functools.partial(torch_encoder_step, sj=sj)
        implementations.append(("PyTorch + SpikingJelly", backend, build, torch_peak_bytes(torch)))
    pairs = []
    for kind in encodings:
        rows = []
        for name, backend, build, peak in implementations:
            measured = measure(build(kind, T, inputs, dtype), repeats, peak)
            row = {"encoding": kind, "implementation": name, "backend": backend}
            row.update(phase_fields("pass", measured, T * N, limits))
            row["effective_bytes_per_s"] = encoder_bytes(T, N, dtype) / measured.step_s
            rows.append(row)
        pairs.append((rows[0], rows[1] if len(rows) == 2 else None))
    return pairs


def bench_encoder(args: argparse.Namespace) -> None:
    shape = (args.batch, args.size, args.size, args.channels)
    pairs = encoder_rows(args.encodings, args.T, shape, args.dtype, args.repeats)
    moved = si(encoder_bytes(args.T, int(np.prod(shape)), args.dtype), "B")
    print(
        f"\nEncoder forward+backward to X, θ_0 and λ: X {list(shape)}, T={args.T}, {args.dtype}, "
        f"median of {args.repeats}; any implementation must move {moved}\n"
    )
    print(
        "| encoding | implementation | backend | first call (s) | time (ms) | spikes/s | effective GB/s "
        "| bytes/s (of peak) | memory GiB: XLA / device peak | snnjax speed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for ours, reference in pairs:
        for row in (ours, reference) if reference else (ours,):
            speed = ratio_text(ours["pass_per_s"], row["pass_per_s"]) if row is reference else ""
            print(
                f"| {row['encoding']} | {row['implementation']} | {row['backend']} | "
                f"{row['pass_first_call_s']:.2f} | {row['pass_step_ms']:.2f} | {row['pass_per_s']:.3g} | "
                f"{row['effective_bytes_per_s'] / 1e9:.1f} | {achieved(row, 'pass', 'bandwidth')} | "
                f"{memory_text(row, 'pass')} | {speed} |"
            )
    if args.json:
        write_json(args.json, args, [row for pair in pairs for row in pair if row])


# QKFormer-3-256's 3×3 convolutions at CIFAR size ("HxW:C-O"); batch 64 = T·B of the CPU comparison (T=4, B=16).
QKFORMER_CONVS = ("32x32:32-64", "32x32:64-128", "32x32:128-128", "16x16:128-256", "16x16:256-256")


def parse_layer(text: str) -> tuple[int, int, int, int]:
    """``"HxW:C-O"`` -> (H, W, C, O)."""
    try:
        size, channels = text.split(":")
        h, w = (int(v) for v in size.split("x"))
        c, o = (int(v) for v in channels.split("-"))
    except ValueError:
        raise SystemExit(f"--layers: got {text!r}; accepted: HxW:C-O, e.g. 32x32:128-128") from None
    return h, w, c, o


def conv_passes(
    x: jax.Array,
    w: jax.Array,
    dy: jax.Array,
    conv: Callable = jax.lax.conv_general_dilated,
    compiler_options: dict | None = None,
) -> dict[str, Step]:
    """Jitted forward, input gradient and weight gradient of the 3×3 'SAME' NHWC convolution ``conv`` (a
    ``lax.conv_general_dilated`` signature), each its own step compiled with XLA's ``compiler_options``."""

    def apply(x, w):
        return conv(x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def jit(fn):
        return jax.jit(fn, compiler_options=compiler_options)

    fns = {
        "forward": jit(apply),
        "input gradient": jit(lambda x, w, dy: jax.vjp(apply, x, w)[1](dy)[0]),
        "weight gradient": jit(lambda x, w, dy: jax.vjp(apply, x, w)[1](dy)[1]),
    }
    args = {"forward": (x, w), "input gradient": (x, w, dy), "weight gradient": (x, w, dy)}
    return {
        name: Step(lambda f=f, a=args[name]: jax.block_until_ready(f(*a)), lambda f=f, a=args[name]: f.lower(*a))
        for name, f in fns.items()
    }


def torch_conv_passes(batch: int, h: int, w: int, c: int, o: int) -> tuple[dict[str, Step], str] | None:
    """The same three passes in PyTorch (NCHW, as the official models run), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c, h, w, generator=gen).to(device)
    weight = (torch.randn(o, c, 3, 3, generator=gen) * 0.05).to(device)
    dy = torch.randn(batch, o, h, w, generator=gen).to(device)

    def timed(fn):
        def run():
            fn()
            if device == "cuda":
                torch.cuda.synchronize()

        return Step(run)

    passes = {
        "forward": timed(lambda: torch.nn.functional.conv2d(x, weight, padding=1)),
        "input gradient": timed(lambda: torch.nn.grad.conv2d_input(x.shape, weight, dy, padding=1)),
        "weight gradient": timed(lambda: torch.nn.grad.conv2d_weight(x, weight.shape, dy, padding=1)),
    }
    return passes, f"torch {torch.__version__} on {device}"


def bench_conv(args: argparse.Namespace) -> None:
    """Times each 3×3 convolution's forward and both gradients as snnjax's programs run them
    (``snnjax.convolution``, compiled with ``snnjax.engine.compiler``'s options), as XLA runs
    ``lax.conv_general_dilated`` with its default options and, where installed, in PyTorch."""
    from snnjax.convolution import conv_general_dilated
    from snnjax.engine.compiler import compiler_options

    options = compiler_options(jax.devices()[0].platform)
    platform = f"jax {jax.__version__} on {jax.devices()[0].platform}"
    rows = []
    for layer in args.layers:
        h, w, c, o = parse_layer(layer)
        key_x, key_w, key_g = jax.random.split(jax.random.key(0), 3)
        dtype = DTYPES[args.dtype]
        x = jax.random.normal(key_x, (args.batch, h, w, c)).astype(dtype)
        weight = (jax.random.normal(key_w, (3, 3, c, o)) * 0.05).astype(dtype)
        dy = jax.random.normal(key_g, (args.batch, h, w, o)).astype(dtype)
        runs = [
            ("snnjax", platform, conv_passes(x, weight, dy, conv_general_dilated, options)),
            ("XLA (lax.conv_general_dilated, default options)", platform, conv_passes(x, weight, dy)),
        ]
        reference = torch_conv_passes(args.batch, h, w, c, o) if args.dtype == "float32" else None
        if reference is not None:
            runs.append(("PyTorch (conv2d, nn.grad)", reference[1], reference[0]))
        flops = 2 * args.batch * h * w * c * o * 9
        for name, backend, passes in runs:
            times = {phase: measure(step, args.repeats).step_s for phase, step in passes.items()}
            rows.append(
                {
                    "layer": layer,
                    "implementation": name,
                    "backend": backend,
                    "flops_per_pass": flops,
                    **{f"{phase.replace(' ', '_')}_ms": t * 1e3 for phase, t in times.items()},
                }
            )
    print(f"\n3×3 convolutions, batch {args.batch}, {args.dtype}, median of {args.repeats} (ms; GFLOP/s)\n")
    print("| layer HxW:C-O | implementation | forward | input gradient | weight gradient | all three | backend |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        cells = [row[f"{p}_ms"] for p in ("forward", "input_gradient", "weight_gradient")]
        text = " | ".join(f"{t:.1f} ({row['flops_per_pass'] / t / 1e6:.0f})" for t in cells)
        print(f"| {row['layer']} | {row['implementation']} | {text} | {sum(cells):.1f} | {row['backend']} |")
    if args.json:
        write_json(args.json, args, rows)


class StepPair(NamedTuple):
    """One configuration's train and eval steps."""

    train: Step
    eval: Step


def one_epoch_of_batches(batch_size: int) -> dict:
    """The loop settings of a timed task: one epoch, ``batch_size`` for training and evaluation, no bars."""
    return {"loop.epochs": 1, "loop.batch_size": batch_size, "loop.eval_batch_size": batch_size, "loop.progress": False}


def task_steps(task, make_eval: Callable[[Callable[[], dict], jax.Array], Step]) -> StepPair:
    """``task``'s real train step (``snnjax.engine.loop.Trainer``) on its first batch, and the eval step that
    ``make_eval(variables, key)`` builds, ``variables()`` giving the current evaluation variables."""
    from snnjax.engine.loop import Trainer

    trainer = Trainer(task)
    key = jax.random.key_data(jax.random.key(0))
    state = trainer.init(key)
    batch = next(task.train_batches(0, key))

    def train_once():
        nonlocal state
        state, metrics = trainer.train_step(state, batch)
        jax.block_until_ready(metrics)

    train = Step(train_once, lambda: trainer.train_step.lower(state, batch))
    return StepPair(train, make_eval(lambda: state.eval_variables, key))


def qkformer_steps(model: str, batch_size: int, dtype: str, T: int) -> StepPair:
    """The CIFAR task on random 32×32 images (direct encoding, standard LIF, no augmentation); eval is one
    step of its evaluator (forward, loss, accuracy and firing-rate sums)."""
    from snnjax.engine.sharding import make_mesh
    from snnjax.settings import replace_paths
    from snnjax.tasks import classification
    from snnjax.tasks.classification.data import CIFAR_MEAN, CIFAR_STD, ClassificationData
    from snnjax.tasks.classification.task import build_model

    config = replace_paths(
        classification.PAPER,
        {
            "model.name": model,
            "model.spiking.encoding": "direct",
            "model.spiking.neuron": "lif",
            "model.spiking.T": T,
            "model.dtype": dtype,
            "data.augment": "none",
            "data.label_smoothing": 0.0,
            "optim.warmup_epochs": 0,
            "optim.cooldown_epochs": 0,
            **one_epoch_of_batches(batch_size),
        },
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2 * batch_size, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, CIFAR_CLASSES, (2 * batch_size,), dtype=np.int32)
    data = ClassificationData(images, labels, images, labels, CIFAR_CLASSES, CIFAR_MEAN, CIFAR_STD, "random")
    mesh = make_mesh(config.loop)
    task = classification.ClassificationTask(config, data, build_model(config.model, CIFAR_CLASSES), mesh)
    evaluator, eval_batch = task.evaluators[0], next(task.eval_batches())

    def make_eval(variables, key):
        def arguments():
            return evaluator.zeros(variables(), eval_batch, key), variables(), eval_batch, key

        return Step(
            lambda: jax.block_until_ready(evaluator.step(*arguments())), lambda: evaluator.step.lower(*arguments())
        )

    return task_steps(task, make_eval)


CIFAR_CLASSES, VOC_CLASSES, BOXES_PER_IMAGE = 10, 20, 8


class RandomDetectionData:
    """One batch of random images with ``BOXES_PER_IMAGE`` random boxes each, in the layout of
    ``snnjax.tasks.detection.data.DetectionData``'s batches: the model, loss and NMS run at VOC's size without the host
    pipeline (which needs OpenCV and real data; its throughput is measured separately)."""

    num_classes = VOC_CLASSES

    def __init__(self, img_size: int, batch_size: int):
        rng = np.random.default_rng(0)
        self.img_size, self.num_train = img_size, batch_size
        xy = rng.uniform(0.2, 0.8, (batch_size, BOXES_PER_IMAGE, 2))
        wh = rng.uniform(0.05, 0.4, (batch_size, BOXES_PER_IMAGE, 2))
        self.batch = {
            "image": rng.integers(0, 256, (batch_size, img_size, img_size, 3), dtype=np.uint8),
            "boxes": np.concatenate([xy, wh], -1).astype(np.float32),
            "classes": rng.integers(0, VOC_CLASSES, (batch_size, BOXES_PER_IMAGE), dtype=np.int32),
            "valid": np.ones((batch_size, BOXES_PER_IMAGE), bool),
        }

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.num_train // batch_size

    def train_batches(self, epoch: int, batch_size: int, seed: int, start: int = 0):
        yield self.batch


def yolo_steps(img_size: int, batch_size: int, dtype: str, mode: str = "snn") -> StepPair:
    """The detection task's train step (YOLOv5 loss, SGD with accumulation, EMA) and, as eval, the jitted
    model + decode + NMS, for 20 classes on random images (phase encoding, learnable LIF, T=4)."""
    from snnjax.engine.sharding import global_batch, make_mesh
    from snnjax.settings import replace_paths
    from snnjax.tasks import detection
    from snnjax.tasks.detection.task import build_model

    config = replace_paths(
        detection.PAPER,
        {
            "model.mode": mode,
            "model.dtype": dtype,
            **one_epoch_of_batches(batch_size),
        },
    )
    mesh = make_mesh(config.loop)
    data = RandomDetectionData(img_size, batch_size)
    task = detection.DetectionTask(config, data, build_model(config.model, VOC_CLASSES), mesh)
    images = global_batch({"image": data.batch["image"]}, mesh)["image"]
    detect = jax.jit(task.evaluators[0].detect)

    def make_eval(variables, key):
        return Step(
            lambda: jax.block_until_ready(detect(variables(), images, key)),
            lambda: detect.lower(variables(), images, key),
        )

    return task_steps(task, make_eval)


def host_pipeline_rate(img_size: int, batch_size: int, batches: int) -> tuple[float, int] | None:
    """Training images/s that the detection data's augmentation threads deliver (after one warm-up batch) and
    the thread count; None without OpenCV."""
    try:
        from snnjax.tasks.detection.data import load_detection
    except ImportError:
        return None
    data = load_detection(
        "synthetic",
        img_size=img_size,
        num_train=batch_size * (batches + 1),
        num_test=1,
        num_classes=VOC_CLASSES,
        max_objects=BOXES_PER_IMAGE,
    )
    stream = data.train_batches(0, batch_size, seed=0)
    next(stream)
    start = time.perf_counter()
    count = sum(len(batch["image"]) for batch in stream)
    return count / (time.perf_counter() - start), data.num_workers


@contextlib.contextmanager
def official_neurons(sj: SpikingJelly, backend: str | None) -> Iterator[None]:
    """While open, ``spikingjelly.clock_driven.neuron`` (what the official model file imports) is a stand-in
    whose multi-step LIF and parametric LIF come from ``sj`` in its own layout, built with ``backend`` (the
    file asks for CuPy everywhere)."""
    neuron = types.ModuleType("spikingjelly.clock_driven.neuron")
    neuron.MultiStepLIFNode = sj.multi_step("LIF", backend)
    neuron.MultiStepParametricLIFNode = sj.multi_step("ParametricLIF", backend)
    package = types.ModuleType("spikingjelly.clock_driven")
    package.__path__, package.neuron = [], neuron
    stand_ins = {package.__name__: package, neuron.__name__: neuron}
    saved = {name: sys.modules[name] for name in stand_ins if name in sys.modules}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name in stand_ins:
            if name in saved:
                sys.modules[name] = saved[name]
            else:
                del sys.modules[name]


class Official(NamedTuple):
    """The official QKFormer CIFAR model file, imported, and how its steps run: PyTorch's ``device``,
    SpikingJelly ``sj`` with ``backend``, AMP in ``amp`` for 16-bit rows."""

    module: types.ModuleType
    sj: SpikingJelly
    backend: str
    amp: str
    torch: types.ModuleType

    @property
    def device(self) -> str:
        return "cuda" if self.torch.cuda.is_available() else "cpu"

    def describe(self, dtype: str) -> str:
        precision = f"AMP {self.amp}" if dtype != "float32" else "float32"
        torch = f"torch {self.torch.__version__} on {self.device}"
        return f"official QKFormer, {torch}, {precision}, {self.sj.describe(self.backend)}"

    def steps(self, size: str, batch_size: int, dtype: str, T: int) -> StepPair:
        """The official model at ``size`` ("L-D": depth L, embed_dims D, otherwise the arguments of the official
        train.py) on random 32×32 images: train is forward, cross-entropy, backward and AdamW, then
        ``reset_net`` as the official loop does; eval is a no-grad forward, then ``reset_net``. 16-bit
        ``dtype`` runs under AMP in ``amp`` (with a gradient scaler for float16)."""
        torch = self.torch
        depth, dim = (int(part) for part in size.split("-"))
        model = self.module.QKFormer(
            pretrained=False,
            drop_rate=0.0,
            drop_path_rate=0.2,
            img_size_h=32,
            img_size_w=32,
            patch_size=4,
            embed_dims=dim,
            num_heads=8,
            mlp_ratios=4,
            in_channels=3,
            num_classes=CIFAR_CLASSES,
            qkv_bias=False,
            depths=depth,
            sr_ratios=1,
            T=T,
        ).to(self.device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.06)
        gen = torch.Generator().manual_seed(0)
        images = torch.randn(batch_size, 3, 32, 32, generator=gen).to(self.device)
        labels = torch.randint(0, CIFAR_CLASSES, (batch_size,), generator=gen).to(self.device)
        half = dtype != "float32"
        scaler = torch.amp.GradScaler(self.device, enabled=half and self.amp == "float16")

        def autocast():
            return torch.autocast(self.device, dtype=getattr(torch, self.amp), enabled=half)

        def finish():
            self.sj.reset_net(model)
            if self.device == "cuda":
                torch.cuda.synchronize()

        def train_once():
            model.train()
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            finish()

        def eval_once():
            model.eval()
            with torch.no_grad(), autocast():
                model(images)
            finish()

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        return StepPair(Step(train_once), Step(eval_once))


def load_official(path: str, backend: str | None, amp: str) -> Official:
    """Imports the official QKFormer ``model.py`` at ``path`` as a module, its neurons from the installed
    SpikingJelly (``official_neurons``); ``backend`` None picks ``default_backend``. Exits with one line
    naming the flag when torch, SpikingJelly or a module the file imports is missing."""
    try:
        import torch
    except ImportError:
        raise SystemExit("--official_model: needs torch, which is not installed (pip install torch)") from None
    sj = find_spikingjelly()
    if sj is None:
        raise SystemExit(f"--official_model: needs SpikingJelly; {NO_SPIKINGJELLY} (pip install spikingjelly)")
    backend = backend or default_backend(torch)
    if backend == "cupy" and not torch.cuda.is_available():
        raise SystemExit("--official_backend: got 'cupy' without a CUDA device; accepted here: torch")
    torch.set_num_threads(os.cpu_count() or 1)
    spec = importlib.util.spec_from_file_location("official_qkformer_model", path)
    module = importlib.util.module_from_spec(spec)
    with official_neurons(sj, backend):
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as error:
            raise SystemExit(f"--official_model: {path} imports {error.name!r}, which is not installed") from None
    if not callable(getattr(module, "QKFormer", None)):
        raise SystemExit(f"--official_model: got {path!r}; accepted: a file defining QKFormer (cifar10/model.py)")
    return Official(module, sj, backend, amp, torch)


def model_row(
    implementation: str, size, batch_size: int, dtype: str, steps: StepPair, repeats: int, peak: Callable
) -> dict:
    """Measures one configuration's train and eval steps into a row."""
    limits = device_limits(jax.devices()[0].device_kind, dtype)
    row = {"implementation": implementation, "size": size, "batch_size": batch_size, "dtype": dtype}
    for phase, step in steps._asdict().items():
        row.update(phase_fields(phase, measure(step, repeats, peak), batch_size, limits))
    return row


def print_model_row(row: dict) -> None:
    print(
        f"| {row['size']} | {row['batch_size']} | {row['dtype']} | {row['train_per_s']:.1f} | "
        f"{row['train_step_ms']:.1f} | {row['eval_per_s']:.1f} | {row['eval_step_ms']:.1f} | "
        f"{row['train_first_call_s']:.2f} / {row['eval_first_call_s']:.2f} | {memory_text(row, 'train')} | "
        f"{achieved(row, 'train', 'flop')} | {achieved(row, 'train', 'bandwidth')} | "
        f"{achieved(row, 'eval', 'flop')} | {achieved(row, 'eval', 'bandwidth')} | {row['implementation']} |",
        flush=True,
    )


def bench_models(args: argparse.Namespace) -> None:
    qkformer = args.benchmark == "qkformer"
    official = (
        load_official(args.official_model, args.official_backend, args.official_amp)
        if qkformer and args.official_model
        else None
    )
    device = jax.devices()[0]
    sizes = args.models if qkformer else args.img_sizes
    title = f"QKFormer, 32×32, T={args.T}" if qkformer else f"spiking YOLOv5n ({args.mode}), T=4"
    print(f"{title} on {device.device_kind} ({len(jax.devices())} device(s)), median of {args.steps} steps\n")
    if qkformer and official is None:
        print(
            "no reference measured: pass --official_model PATH/cifar10/model.py to time the official model here "
            "(the official code's stored H200 figures are documentation only: docs/performance.md §1)\n"
        )
    print(
        "| model / size | batch | dtype | train img/s | train step (ms) | eval img/s | eval step (ms) | "
        "first call train / eval (s) | train memory GiB: XLA / device peak | train FLOP/s (of peak) | "
        "train bytes/s (of peak) | eval FLOP/s (of peak) | eval bytes/s (of peak) | implementation |"
    )
    print("|---" * 14 + "|")
    ours = f"snnjax, jax {jax.__version__} on {device.platform}"
    rows = []
    for size in sizes:
        for batch_size in args.batch_sizes:
            for dtype in args.dtypes:
                steps = (
                    qkformer_steps(size, batch_size, dtype, args.T)
                    if qkformer
                    else yolo_steps(size, batch_size, dtype, args.mode)
                )
                rows.append(model_row(ours, size, batch_size, dtype, steps, args.steps, device_peak_bytes))
                print_model_row(rows[-1])
                if official is not None:
                    rows.extend(official_rows(official, rows[-1], args))
    if official is not None:
        print_ratios(rows)
    if not qkformer:
        for size in sizes:
            rate = host_pipeline_rate(size, max(args.batch_sizes), args.steps)
            print(
                f"\nhost pipeline at {size} px: "
                + (
                    "not measured (OpenCV is not installed)"
                    if rate is None
                    else f"{rate[0]:.0f} training img/s on {rate[1]} threads"
                )
            )
    if args.json:
        write_json(args.json, args, rows)


def official_rows(official: Official, ours: dict, args: argparse.Namespace) -> list[dict]:
    """The official model's row for the configuration of our row ``ours`` (none for 16-bit rows off CUDA,
    where AMP is not what the official code runs)."""
    size, batch_size, dtype = ours["size"], ours["batch_size"], ours["dtype"]
    if dtype != "float32" and official.device != "cuda":
        print(f"| {size} | {batch_size} | {dtype} | not measured: the official model's AMP runs on CUDA only |")
        return []
    steps = official.steps(size, batch_size, dtype, args.T)
    row = model_row(
        official.describe(dtype), size, batch_size, dtype, steps, args.steps, torch_peak_bytes(official.torch)
    )
    print_model_row(row)
    return [row]


def print_ratios(rows: list[dict]) -> None:
    """snnjax's img/s over the official model's, for every configuration measured by both."""
    print("\nsnnjax / official img/s (measured here, same shapes):")
    for ours, reference in zip(rows, rows[1:]):
        if ours["implementation"].startswith("snnjax") and reference["implementation"].startswith("official"):
            print(
                f"  {ours['size']}, batch {ours['batch_size']}, {ours['dtype']}: "
                f"train {ours['train_per_s'] / reference['train_per_s']:.2f}×, "
                f"eval {ours['eval_per_s'] / reference['eval_per_s']:.2f}×"
            )


# The official QKFormer code on one H200 (PyTorch 2.11, SpikingJelly's CuPy LIF, fp16 AMP, T=4, 32×32):
# (train img/s, eval img/s, peak GiB) per (model, batch), and its LIF pass in ms (docs/performance.md §1).
OFFICIAL_H200 = {
    ("3-256", 64): (1807, 4254, 4.4),
    ("4-384", 64): (1419, 3485, 7.3),
    ("3-256", 256): (3444, 10728, 17.3),
}
OFFICIAL_H200_LIF_MS = {"float32": 1.64, "float16": 1.28}


def parse_config(text: str) -> tuple[str, int]:
    """``"3-256:64"`` -> ("3-256", 64)."""
    size, _, batch = text.partition(":")
    if not batch.isdigit() or int(batch) < 1 or len(size.split("-")) != 2:
        raise SystemExit(f"--configs: got {text!r}; accepted: MODEL:BATCH, e.g. 3-256:64")
    return size, int(batch)


def ratio_text(ours: float, reference: float | None, higher_is_better: bool = True) -> str:
    """Our speed over the reference's as "1.23×" (rates, or times with ``higher_is_better=False``); "n/a"
    without a reference."""
    if not reference:
        return "n/a"
    return f"{(ours / reference if higher_is_better else reference / ours):.2f}×"


def bench_compare(args: argparse.Namespace) -> None:
    """The whole comparison in one run: the LIF pass against SpikingJelly's and each QKFormer configuration
    against the official model, each measured here where installed (else the stored H200 figures), then
    one summary table (the README's)."""
    official = (
        load_official(args.official_model, args.official_backend, args.official_amp) if args.official_model else None
    )
    device = jax.devices()[0]
    print(f"comparison on {device.device_kind} ({device.platform}), jax {jax.__version__}\n")
    summary = []
    ours_ms = measure(snnjax_lif_step(args.T, args.N, DTYPES[args.lif_dtype]), args.repeats).step_s * 1e3
    reference = spikingjelly_lif_step(args.T, args.N, args.lif_dtype, args.official_backend)
    if reference is not None:
        ref_ms, source = measure(reference[0], args.repeats, reference[2]).step_s * 1e3, f"measured: {reference[1]}"
    else:
        ref_ms, source = OFFICIAL_H200_LIF_MS.get(args.lif_dtype), "stored H200 figure (SpikingJelly not installed)"
    moved = lif_bytes(args.T, args.N, args.lif_dtype)
    limits = device_limits(device.device_kind, args.lif_dtype)
    share = f", {moved / (ours_ms / 1e3) / limits[1]:.0%} of the memory bandwidth" if limits else ""
    summary.append(
        (
            f"LIF forward + backward, T={args.T} × {args.N:,}, {args.lif_dtype} ({si(moved, 'B')} to move)",
            f"{ref_ms:.2f} ms ({source})" if ref_ms else f"n/a ({source})",
            f"{ours_ms:.2f} ms ({moved / (ours_ms / 1e3) / 1e9:.0f} GB/s{share})",
            ratio_text(ours_ms, ref_ms, higher_is_better=False),
        )
    )
    size, batch = args.configs[0]
    shape = (batch, 32, 32, int(size.split("-")[1]) // 8)
    moved = si(encoder_bytes(args.T, int(np.prod(shape)), args.dtype), "B")
    for ours, reference in encoder_rows(args.encodings, args.T, shape, args.dtype, args.repeats):
        summary.append(
            (
                f"{ours['encoding']} encoder forward + backward, X {list(shape)}, T={args.T}, {args.dtype} "
                f"({moved} to move)",
                f"{reference['pass_step_ms']:.2f} ms (measured: {reference['backend']})"
                if reference
                else "n/a (SpikingJelly not installed)",
                f"{ours['pass_step_ms']:.2f} ms ({ours['effective_bytes_per_s'] / 1e9:.0f} GB/s)",
                ratio_text(ours["pass_per_s"], reference["pass_per_s"] if reference else None),
            )
        )
    ours_name = f"snnjax, jax {jax.__version__} on {device.platform}"
    for size, batch in args.configs:
        ours = model_row(
            ours_name,
            size,
            batch,
            args.dtype,
            qkformer_steps(size, batch, args.dtype, args.T),
            args.steps,
            device_peak_bytes,
        )
        print_model_row(ours)
        measured = official_rows(official, ours, args) if official is not None else []
        stored = OFFICIAL_H200.get((size, batch))
        for i, phase in enumerate(("train", "eval")):
            if measured:
                ref_rate, source = measured[0][f"{phase}_per_s"], "measured"
                ref_memory = measured[0].get("train_device_peak_bytes")
            else:
                ref_rate, source = (stored[i], "stored H200") if stored else (None, "not measured")
                ref_memory = stored[2] * 2**30 if stored else None
            memory = ""
            if phase == "train":
                ours_memory = ours.get("train_memory_bytes")  # this step's own (the device peak accumulates)
                memory = f"; memory {ours_memory / 2**30:.1f} GiB (XLA)" if ours_memory else ""
                memory += f" vs {ref_memory / 2**30:.1f} GiB" if ref_memory and memory else ""
            summary.append(
                (
                    f"QKFormer-{size} {phase}, batch {batch}, {args.dtype}",
                    f"{ref_rate:.0f} img/s ({source})" if ref_rate else source,
                    f"{ours[f'{phase}_per_s']:.0f} img/s{memory}",
                    ratio_text(ours[f"{phase}_per_s"], ref_rate),
                )
            )
    print("\n| measurement | official PyTorch + SpikingJelly | snnjax | snnjax speed |")
    print("|---|---|---|---|")
    for row in summary:
        print("| " + " | ".join(row) + " |")
    if args.json:
        write_json(
            args.json, args, [dict(zip(("measurement", "reference", "snnjax", "speed"), row)) for row in summary]
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("lif", help="LIF forward+backward throughput")
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--N", type=int, default=16_777_216, help="neurons per time step (default 16.8M)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        help="SpikingJelly's LIF backend (default: cupy on CUDA if installed, else torch)",
    )
    p.set_defaults(run=bench_lif)
    e = sub.add_parser("encoder", help="temporal encoder forward+backward throughput, every encoding")
    e.add_argument("--encodings", nargs="+", choices=KINDS, default=list(KINDS))
    e.add_argument("--T", type=int, default=4)
    e.add_argument("--batch", type=int, default=64)
    e.add_argument("--size", type=int, default=32, help="image height and width")
    e.add_argument("--channels", type=int, default=32, help="default: QKFormer-3-256's LC conv width (D/8)")
    e.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    e.add_argument("--repeats", type=int, default=40)
    e.set_defaults(run=bench_encoder)
    q = sub.add_parser("qkformer", help="QKFormer CIFAR train/eval throughput, with the official model's")
    q.add_argument("--models", nargs="+", default=["3-256", "4-384"])
    q.add_argument("--batch_sizes", nargs="+", type=int, default=[64, 256])
    q.add_argument("--dtypes", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    q.add_argument("--T", type=int, default=4, help="time steps of both models")
    q.add_argument("--steps", type=int, default=10, help="timed steps per configuration (after the first call)")
    q.set_defaults(run=bench_models)
    y = sub.add_parser("yolo", help="spiking YOLOv5n train/eval (model + NMS) throughput")
    y.add_argument("--img_sizes", nargs="+", type=int, default=[320])
    y.add_argument("--batch_sizes", nargs="+", type=int, default=[24, 64])
    y.add_argument("--dtypes", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    y.add_argument("--mode", choices=("snn", "ann"), default="snn")
    y.add_argument("--steps", type=int, default=10, help="timed steps per configuration (after the first call)")
    y.set_defaults(run=bench_models)
    c = sub.add_parser("conv", help="3×3 convolution forward / input / weight gradient, XLA vs PyTorch")
    c.add_argument("--layers", nargs="+", default=list(QKFORMER_CONVS), help="HxW:C-O (default: QKFormer-3-256's)")
    c.add_argument("--batch", type=int, default=64, help="images per call (T·B of a time-folded model)")
    c.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    c.add_argument("--repeats", type=int, default=5)
    c.set_defaults(run=bench_conv)
    a = sub.add_parser("compare", help="the whole GPU comparison in one run: LIF and QKFormer, summary table")
    a.add_argument(
        "--configs",
        nargs="+",
        type=parse_config,
        default=[parse_config(c) for c in ("3-256:64", "3-256:256", "4-384:64")],
        help="MODEL:BATCH (default: the official figures')",
    )
    a.add_argument("--dtype", choices=("float32", "bfloat16"), default="bfloat16", help="QKFormer compute dtype")
    a.add_argument("--T", type=int, default=4)
    a.add_argument("--N", type=int, default=16_777_216, help="LIF neurons per time step")
    a.add_argument("--lif_dtype", choices=tuple(DTYPES), default="float32")
    a.add_argument(
        "--encodings",
        nargs="+",
        choices=KINDS,
        default=["phase", "ttfs"],
        help="encoders timed on the first config's learnable-conv output, X [batch, 32, 32, D/8]",
    )
    a.add_argument("--steps", type=int, default=10, help="timed model steps per configuration")
    a.add_argument("--repeats", type=int, default=10, help="timed LIF passes")
    a.set_defaults(run=bench_compare)
    for subparser in (q, a):
        subparser.add_argument(
            "--official_model", metavar="PATH", help="cifar10/model.py of your checkout of the official QKFormer code"
        )
        subparser.add_argument(
            "--official_backend",
            choices=BACKENDS,
            help="SpikingJelly backend of the official model (default: cupy on CUDA if installed, else torch)",
        )
        subparser.add_argument(
            "--official_amp",
            choices=("float16", "bfloat16"),
            default="float16",
            help="the official model's AMP type on our bfloat16 rows (CUDA; default float16, as the official code)",
        )
    for subparser in (p, e, q, y, c, a):
        subparser.add_argument("--json", metavar="PATH", help="also write every row (ours and the reference's) here")
    args = parser.parse_args(argv)
    names = {
        "lif": ("T", "N", "repeats"),
        "encoder": ("T", "batch", "size", "channels", "repeats"),
        "qkformer": ("T", "steps"),
        "yolo": ("steps",),
        "conv": ("batch", "repeats"),
        "compare": ("T", "N", "steps", "repeats"),
    }
    names = names[args.benchmark]
    check_args(parser, args, {name: integer(1) for name in names})
    if args.benchmark in ("qkformer", "yolo"):
        check_args(parser, args, {"batch_sizes": Accepts(lambda v: min(v) >= 1, "ints >= 1")})
    if args.benchmark in ("qkformer", "compare"):
        accepts = Accepts(lambda v: v is None or os.path.isfile(v), "the path of an existing file (cifar10/model.py)")
        check_args(parser, args, {"official_model": accepts})
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pages = "huge pages (glibc.malloc.hugetlb=1)" if hugepages_in_use() else "4 KiB pages"
    print(f"host heap of this process, both implementations: {pages}", flush=True)
    args.run(args)


if __name__ == "__main__":
    restart_with_hugepages()
    main()
