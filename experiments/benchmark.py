"""Throughput benchmarks of snnjax, side by side with SpikingJelly + PyTorch where it is installed.

    python experiments/benchmark.py lif                    # LIF forward+backward, T=4 × 16.8M neurons
    python experiments/benchmark.py lif --T 4 --N 1048576 --dtype bfloat16
    python experiments/benchmark.py qkformer               # 3-256 and 4-384, batch 64/256, fp32/bf16
    python experiments/benchmark.py qkformer --models 3-256 --batch_sizes 64 --dtypes float32 --steps 3

``lif`` times one forward + backward pass of a multi-step LIF (QKFormer's settings: τ=2, hard reset,
detach_reset, sigmoid surrogate) over ``[T, N]`` and prints elements/s and the effective memory
bandwidth, counting the four tensors of T·N elements that any implementation must move (read x,
write spikes, read the spike cotangent, write the input gradient). SpikingJelly's multi-step
``LIFNode`` runs in the same process on PyTorch's device of choice (CPU here) when importable.

``qkformer`` and ``yolo`` time the real train steps of the CIFAR and VOC tasks. ``qkformer``: the
CIFAR step (``snnjax.tasks.classification.task``: on-device batch gather, forward, soft-target cross-entropy,
backward, AdamW; direct encoding, standard LIF, official settings, no augmentation) and the eval step on
32×32 images, T=4; it prints img/s, step time and the compiled step's memory footprint (XLA's memory
analysis: arguments + outputs + temporaries − aliased), next to the official PyTorch code's figures on
an H200 (docs/performance.md §1) when running on a GPU.
``yolo``: the detection step (YOLOv5 loss, SGD with accumulation, EMA) on random 20-class batches and, as
eval, the jitted model + decode + NMS; it needs neither OpenCV nor a dataset. It then times the host
pipeline that feeds training (mosaic, affine, HSV, flip on the worker threads of ``snnjax.tasks.detection.data``) on
synthetic images, when OpenCV is installed, to show whether it keeps up with the device.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import Accepts, check_args, integer
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
    node = neuron.LIFNode(
        tau=2.0, v_reset=0.0, detach_reset=True, surrogate_function=surrogate.Sigmoid(), step_mode="m"
    ).to(device)
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
    rows = [
        (
            "snnjax",
            f"jax {jax.__version__} on {jax.devices()[0].platform}",
            time_it(snnjax_lif_step(args.T, args.N, DTYPES[args.dtype]), args.repeats),
            device_peak_bytes(),
        )
    ]
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
        print(
            f"| {name} | {where} | {seconds * 1e3:.2f} | {elements / seconds:.3g} | "
            f"{4 * elements * itemsize / seconds / 1e9:.1f} | {peak_text} |"
        )
    if len(rows) == 2:
        print(f"\nsnnjax is {rows[1][2] / rows[0][2]:.2f}× SpikingJelly's throughput")


# The official QKFormer code on one H200 (PyTorch 2.11 + SpikingJelly CuPy, AMP fp16, T=4, 32×32; docs/performance.md
# §1): (model, batch) -> (train img/s, eval img/s, peak GiB).
QKFORMER_REFERENCE = {
    ("3-256", 64): (1807, 4254, 4.4),
    ("4-384", 64): (1419, 3485, 7.3),
    ("3-256", 256): (3444, 10728, 17.3),
}


class StepTimer(NamedTuple):
    """One configuration's timed closures and the train step's compiled memory footprint."""

    train_once: Callable[[], None]
    eval_once: Callable[[], None]
    memory_bytes: int | None


def compiled_bytes(jitted, *args) -> int | None:
    """Bytes a compiled step holds at its peak, from XLA's memory analysis (None if unavailable)."""
    analysis = jitted.lower(*args).compile().memory_analysis()
    if analysis is None:
        return None
    return (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )


def one_epoch_of_batches(batch_size: int) -> dict:
    """The loop settings of a timed task: one epoch, ``batch_size`` for training and evaluation, no bars."""
    return {"loop.epochs": 1, "loop.batch_size": batch_size, "loop.eval_batch_size": batch_size, "loop.progress": False}


def task_timer(task, evaluate: Callable) -> StepTimer:
    """Times ``task``'s real train step (``snnjax.engine.loop.Trainer``) on its first batch, and
    ``evaluate(variables, key)`` (which must block until done)."""
    from snnjax.engine.loop import Trainer

    trainer = Trainer(task)
    key = jax.random.key_data(jax.random.key(0))
    state = trainer.init(key)
    batch = next(task.train_batches(0, key))
    memory = compiled_bytes(trainer.train_step, state, batch)

    def train_once():
        nonlocal state
        state, metrics = trainer.train_step(state, batch)
        jax.block_until_ready(metrics)

    return StepTimer(train_once, lambda: evaluate(state.eval_variables, key), memory)


def qkformer_timer(model: str, batch_size: int, dtype: str) -> StepTimer:
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
    labels = rng.integers(0, 10, (2 * batch_size,), dtype=np.int32)
    data = ClassificationData(images, labels, images, labels, 10, CIFAR_MEAN, CIFAR_STD, "random")
    mesh = make_mesh(config.loop)
    task = classification.ClassificationTask(config, data, build_model(config.model, 10), mesh)
    evaluator, eval_batch = task.evaluators[0], next(task.eval_batches())

    def evaluate(variables, key):
        totals = evaluator.zeros(variables, eval_batch, key)
        jax.block_until_ready(evaluator.step(totals, variables, eval_batch, key))

    return task_timer(task, evaluate)


VOC_CLASSES, BOXES_PER_IMAGE = 20, 8


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


def yolo_timer(img_size: int, batch_size: int, dtype: str, mode: str = "snn") -> StepTimer:
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
    return task_timer(task, lambda variables, key: jax.block_until_ready(detect(variables, images, key)))


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


def bench_models(args: argparse.Namespace) -> None:
    on_gpu = jax.devices()[0].platform == "gpu"
    sizes = args.models if args.benchmark == "qkformer" else args.img_sizes
    title = "QKFormer, 32×32, T=4" if args.benchmark == "qkformer" else f"spiking YOLOv5n ({args.mode}), T=4"
    print(f"{title} on {jax.devices()[0].device_kind} ({len(jax.devices())} device(s)), median of {args.steps} steps\n")
    print(
        "| model / size | batch | dtype | train img/s | train step (ms) | eval img/s | train memory (GiB) | "
        "reference train / eval img/s, GiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        for batch_size in args.batch_sizes:
            for dtype in args.dtypes:
                timer = (
                    qkformer_timer(size, batch_size, dtype)
                    if args.benchmark == "qkformer"
                    else yolo_timer(size, batch_size, dtype, args.mode)
                )
                train_s = time_it(timer.train_once, args.steps, warmup=1)
                eval_s = time_it(timer.eval_once, args.steps, warmup=1)
                ref = QKFORMER_REFERENCE.get((size, batch_size)) if on_gpu else None
                ref_text = f"{ref[0]} / {ref[1]}, {ref[2]}" if ref else "n/a"
                mem_text = f"{timer.memory_bytes / 2**30:.2f}" if timer.memory_bytes is not None else "n/a"
                print(
                    f"| {size} | {batch_size} | {dtype} | {batch_size / train_s:.1f} | {train_s * 1e3:.1f} | "
                    f"{batch_size / eval_s:.1f} | {mem_text} | {ref_text} |",
                    flush=True,
                )
    if args.benchmark == "yolo":
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("lif", help="LIF forward+backward throughput")
    p.add_argument("--T", type=int, default=4)
    p.add_argument("--N", type=int, default=16_777_216, help="neurons per time step (default 16.8M)")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32")
    p.add_argument("--repeats", type=int, default=10)
    p.set_defaults(run=bench_lif)
    q = sub.add_parser("qkformer", help="QKFormer CIFAR train/eval throughput")
    q.add_argument("--models", nargs="+", default=["3-256", "4-384"])
    q.add_argument("--batch_sizes", nargs="+", type=int, default=[64, 256])
    q.add_argument("--dtypes", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    q.add_argument("--steps", type=int, default=10, help="timed steps per configuration (after one warm-up)")
    q.set_defaults(run=bench_models)
    y = sub.add_parser("yolo", help="spiking YOLOv5n train/eval (model + NMS) throughput")
    y.add_argument("--img_sizes", nargs="+", type=int, default=[320])
    y.add_argument("--batch_sizes", nargs="+", type=int, default=[24, 64])
    y.add_argument("--dtypes", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"])
    y.add_argument("--mode", choices=("snn", "ann"), default="snn")
    y.add_argument("--steps", type=int, default=10, help="timed steps per configuration (after one warm-up)")
    y.set_defaults(run=bench_models)
    args = parser.parse_args(argv)
    names = ("T", "N", "repeats") if args.benchmark == "lif" else ("steps",)
    check_args(parser, args, {name: integer(1) for name in names})
    if args.benchmark != "lif":
        check_args(parser, args, {"batch_sizes": Accepts(lambda v: min(v) >= 1, "ints >= 1")})
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
