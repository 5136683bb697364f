"""Throughput benchmarks of snnjax, side by side with SpikingJelly + PyTorch where it is installed.

    python experiments/benchmark.py lif                    # LIF forward+backward, T=4 × 16.8M neurons
    python experiments/benchmark.py lif --T 4 --N 1048576 --dtype bfloat16

``lif`` times one forward + backward pass of a multi-step LIF (QKFormer's settings: τ=2, hard reset,
detach_reset, sigmoid surrogate) over ``[T, N]`` and prints elements/s and the effective memory
bandwidth, counting the four tensors of T·N elements that any implementation must move (read x,
write spikes, read the spike cotangent, write the input gradient). SpikingJelly's multi-step
``LIFNode`` runs in the same process on PyTorch's device of choice (CPU here) when importable.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.neurons import lif
from snnjax.surrogate import Sigmoid

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def time_it(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median wall time in seconds of ``fn()`` (which must block until its result is ready)."""
    for _ in range(warmup):
        fn()
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


def snnjax_lif_step(T: int, N: int, dtype) -> Callable[[], object]:
    """A closure running one jitted LIF forward + backward over [T, N]."""
    key_x, key_g = jax.random.split(jax.random.PRNGKey(0))
    x = (jax.random.uniform(key_x, (T, N), jnp.float32) * 2.5).astype(dtype)
    g = jax.random.normal(key_g, (T, N), jnp.float32).astype(dtype)
    neuron = lambda x: lif(x, tau=2.0, v_reset=0.0, detach_reset=True, surrogate=Sigmoid())

    @jax.jit
    def forward_backward(x, g):
        spikes, vjp = jax.vjp(neuron, x)
        return spikes, vjp(g)[0]

    return lambda: jax.block_until_ready(forward_backward(x, g))


def spikingjelly_lif_step(T: int, N: int, dtype: str) -> tuple[Callable[[], object], str] | None:
    """The same pass with SpikingJelly's multi-step LIFNode, or None when it is not installed."""
    try:
        import torch
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError:
        return None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(os.cpu_count() or 1)
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    node = neuron.LIFNode(tau=2.0, v_reset=0.0, detach_reset=True, surrogate_function=surrogate.Sigmoid(),
                          step_mode="m").to(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(T, N, generator=gen) * 2.5).to(device, tdtype).requires_grad_()
    g = torch.randn(T, N, generator=gen).to(device, tdtype)

    def step():
        x.grad = None
        node.reset()
        node(x).backward(g)
        if device == "cuda":
            torch.cuda.synchronize()

    return step, f"torch {torch.__version__} on {device}"


def bench_lif(args: argparse.Namespace) -> None:
    elements = args.T * args.N
    itemsize = np.dtype(DTYPES[args.dtype]).itemsize
    rows = [("snnjax", f"jax {jax.__version__} on {jax.devices()[0].platform}",
             time_it(snnjax_lif_step(args.T, args.N, DTYPES[args.dtype]), args.repeats), device_peak_bytes())]
    reference = spikingjelly_lif_step(args.T, args.N, args.dtype)
    if reference is None:
        print("SpikingJelly not installed: snnjax only (pip install torch spikingjelly to compare)")
    else:
        step, where = reference
        rows.append(("SpikingJelly", where, time_it(step, args.repeats), None))
    print(f"\nLIF forward+backward, T={args.T}, N={args.N:,}, {args.dtype}, median of {args.repeats}\n")
    print("| implementation | backend | time (ms) | elements/s | effective GB/s | peak device memory |")
    print("|---|---|---|---|---|---|")
    for name, where, seconds, peak in rows:
        peak_text = f"{peak / 2**30:.2f} GiB" if peak else "n/a"
        print(f"| {name} | {where} | {seconds * 1e3:.2f} | {elements / seconds:.3g} | "
              f"{4 * elements * itemsize / seconds / 1e9:.1f} | {peak_text} |")
    if len(rows) == 2:
        print(f"\nsnnjax is {rows[1][2] / rows[0][2]:.2f}× SpikingJelly's throughput")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("lif", help="LIF forward+backward throughput")
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--N", type=int, default=16_777_216, help="neurons per time step (default 16.8M)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--repeats", type=int, default=10)
    p.set_defaults(run=bench_lif)
    args = parser.parse_args(argv)
    if args.T < 1 or args.N < 1 or args.repeats < 1:
        parser.error("arguments --T, --N and --repeats must be positive integers")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
