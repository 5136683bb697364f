"""Firing rates and YOLOv5-loss gradients of the YOLOv5n at initialisation, spiking against ANN.

Shows why ``experiments/voc.py`` starts the spiking BatchNorms at γ = 2 (``--bn_scale``): with γ = 1 a LIF
(τ = 2, V_th = 1, sigmoid surrogate α = 4) fires a few per cent and the backbone gets far less gradient than
the ANN's. For each BN scale, and for the ANN, on synthetic detection batches (train mode, mean over
``--seeds`` initialisations):

    rate     mean firing rate of the LIF layers after the encoder
    |g|      global norm of the parameter gradient of YOLOv5's loss
    |g| per module, and depth = |g(model_1)| / |g(model_20)| (how the gradient grows towards the input)

    python experiments/init_gradients.py                       # 64 px, T = 2, γ in 1 1.5 2 3
    python experiments/init_gradients.py --img_size 320 --T 4 --bn_scales 1 2
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.checks import Accepts, check_args, integer
from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.loop import RUN_ONCE
from snnjax.metrics.spikes import firing_rates
from snnjax.models.spiking import SpikingConfig
from snnjax.models.yolo import YOLOv5n
from snnjax.tasks.detection.loss import yolo_loss

MODULES = ("model_1", "model_6", "model_13", "model_20", "model_24")


def measure(model: YOLOv5n, batch: dict, seeds: int, num_classes: int) -> list[dict]:
    """Firing rate, global gradient norm and per-module gradient norms of initialisations 0 .. seeds - 1
    (init and gradient each compiled once for all seeds)."""
    images = jnp.asarray(batch["image"], jnp.float32) / 255.0
    init = jax.jit(
        lambda key: model.init({"params": key, "encoding": key}, images, train=False), compiler_options=RUN_ONCE
    )

    def loss(params, variables, key):
        raw, state = model.apply(
            {**variables, "params": params},
            images,
            train=True,
            mutable=["batch_stats", "firing_rates"],
            rngs={"encoding": key},
        )
        value, _ = yolo_loss(
            raw, batch["boxes"], batch["classes"], batch["valid"], num_classes=num_classes, img_size=images.shape[1]
        )
        return value, state.get("firing_rates", {})

    gradient = jax.jit(jax.grad(loss, has_aux=True))
    norm = lambda tree: float(jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(tree))))
    rows = []
    for seed in range(seeds):
        key = jax.random.key(seed)
        variables = init(key)
        grads, rates = gradient(variables["params"], variables, key)
        layer_rates = [float(v) for k, v in firing_rates(rates).items() if not k.startswith("encoder")]
        rows.append(
            {
                "rate": float(np.mean(layer_rates)) if layer_rates else float("nan"),
                "norm": norm(grads),
                **{m: norm(grads[m]) for m in MODULES},
            }
        )
    return rows


def main(argv: list[str] | None = None) -> list[tuple[str, dict]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img_size", type=int, default=64)
    parser.add_argument("--T", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--bn_scales", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--classes", type=int, default=3)
    args = parser.parse_args(argv)
    check_args(parser, args, {name: integer(1) for name in ("T", "batch_size", "seeds", "classes")})
    multiple = Accepts(lambda v: v >= 32 and v % 32 == 0, "a positive multiple of 32")
    check_args(parser, args, {"img_size": multiple, "bn_scales": Accepts(lambda v: min(v) > 0, "numbers > 0")})

    from snnjax.tasks.detection.data import load_detection

    data = load_detection(
        "synthetic", img_size=args.img_size, num_train=args.batch_size, num_test=1, num_classes=args.classes, seed=0
    )
    batch = {k: jnp.asarray(v) for k, v in next(data.train_batches(0, args.batch_size, seed=0)).items()}
    variants = [
        (
            f"snn γ={g:g}",
            YOLOv5n(args.classes, "snn", SpikingConfig(T=args.T, encoding="phase", neuron="learnable", bn_scale=g)),
        )
        for g in args.bn_scales
    ]
    variants.append(("ann", YOLOv5n(args.classes, "ann")))
    print(
        f"YOLOv5n at initialisation, {args.img_size} px, T={args.T}, batch {args.batch_size}, "
        f"mean of {args.seeds} seeds\n"
    )
    print("| model | rate | global |g| | " + " | ".join(f"|g| {m}" for m in MODULES) + " | depth |")
    print("|---" * (len(MODULES) + 4) + "|")
    rows = []
    for name, model in variants:
        runs = measure(model, batch, args.seeds, args.classes)
        row = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        rows.append((name, row))
        print(
            f"| {name} | {row['rate']:.3f} | {row['norm']:.3g} | "
            + " | ".join(f"{row[m]:.3g}" for m in MODULES)
            + f" | {row['model_1'] / row['model_20']:.2f} |",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    restart_with_hugepages()
    main()
