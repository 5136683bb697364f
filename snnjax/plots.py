"""Figures of spiking networks and their training runs (matplotlib, written as PNG).

Each function takes plain arrays and dicts and a path: spike rasters, per-channel spike maps and membrane
traces of a :func:`snnjax.record.record_spikes` recording, and the reproduction report's training curves,
firing-rate maps, threshold schedules, PR curves and boxes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def training_curves(histories: Mapping[str, Sequence[Sequence[dict]]], metric: str, path: str) -> str:
    """Train loss, evaluation ``metric`` and learning rate against the epoch: one colour per setting
    (``histories``: label -> one ``metrics.jsonl`` record list per seed)."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    for i, (label, runs) in enumerate(histories.items()):
        for j, records in enumerate(runs):
            epochs = [r["epoch"] for r in records]
            for ax, key in zip(axes, ("train_loss", f"eval_{metric}", "lr")):
                values = [r.get(key) for r in records]
                points = [(e, v) for e, v in zip(epochs, values) if isinstance(v, int | float)]
                if points:
                    ax.plot(*zip(*points), color=colours[i % 10], alpha=0.85, label=label if j == 0 else None)
    for ax, title in zip(axes, ("training loss", f"test {metric}", "learning rate")):
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    return _save(fig, path)


def firing_heatmaps(rates: Mapping[str, Sequence[dict]], path: str) -> str:
    """Firing rate per layer (rows) and epoch (columns), one panel per run (``rates``: label -> the
    per-epoch ``{layer: rate}`` maps)."""
    fig, axes = plt.subplots(1, len(rates), figsize=(4.5 * len(rates), 6), squeeze=False)
    for ax, (label, epochs) in zip(axes[0], rates.items()):
        layers = list(epochs[-1])
        grid = np.array([[e.get(name, np.nan) for e in epochs] for name in layers])
        image = ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, interpolation="nearest")
        ax.set_yticks(range(len(layers)), layers, fontsize=5)
        ax.set_xticks(range(len(epochs)), range(1, len(epochs) + 1), fontsize=7)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def firing_by_layer(rates: Mapping[str, Mapping[str, float]], path: str) -> str:
    """Final firing rate of every layer, one line per run (``rates``: label -> {layer: rate})."""
    fig, ax = plt.subplots(figsize=(12, 4.5))
    layers = list(dict.fromkeys(name for run in rates.values() for name in run))
    for label, run in rates.items():
        ax.plot(range(len(layers)), [run.get(name, np.nan) for name in layers], marker="o", ms=3, label=label)
    ax.set_xticks(range(len(layers)), layers, rotation=90, fontsize=5)
    ax.set_ylabel("firing rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def raster(ax, spikes: np.ndarray, neurons: int = 96, seed: int = 0) -> None:
    """Draws ``spikes [T, ...]`` (one example) as a raster on ``ax``: ``neurons`` neurons drawn at random
    among those that fire at least once (y) against the time step (x), titled with the firing rate."""
    flat = np.asarray(spikes, np.float32).reshape(spikes.shape[0], -1)
    active = np.flatnonzero(flat.sum(0) > 0)
    rng = np.random.default_rng(seed)
    if not len(active):
        ax.text(0.5, 0.5, "no spikes", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    chosen = np.sort(rng.choice(active, min(neurons, len(active)), replace=False))
    ax.imshow(flat[:, chosen].T, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks(range(flat.shape[0]), range(1, flat.shape[0] + 1))
    ax.set_xlabel("time step")
    ax.set_ylabel(f"neuron ({len(chosen)} of {len(active)} active)", fontsize=7)


def spike_rasters(
    image: np.ndarray, spikes: Mapping[str, np.ndarray], path: str, neurons: int = 96, seed: int = 0
) -> str:
    """The image, then for each encoding a :func:`raster` of its encoder's output (``spikes[label]``: ``[T,
    H, W, C]`` of that image) over the spike count over time as a map (summed over channels)."""
    fig, axes = plt.subplots(2, len(spikes) + 1, figsize=(3.2 * (len(spikes) + 1), 6), squeeze=False)
    axes[0, 0].imshow(image.squeeze())
    axes[0, 0].set_title("input image")
    axes[1, 0].axis("off")
    axes[0, 0].axis("off")
    for column, (label, s) in enumerate(spikes.items(), start=1):
        raster(axes[0, column], s, neurons, seed)
        axes[0, column].set_title(f"{label}: rate {np.mean(s):.3f}", fontsize=9)
        counts = axes[1, column].imshow(np.sum(s, axis=(0, -1)), cmap="magma")
        axes[1, column].set_title("spikes over time, all channels", fontsize=8)
        axes[1, column].axis("off")
        fig.colorbar(counts, ax=axes[1, column], fraction=0.046)
    return _save(fig, path)


def layer_rasters(spikes: Mapping[str, np.ndarray], path: str, neurons: int = 64, seed: int = 0) -> str:
    """A :func:`raster` per layer of one example's recording (``spikes``: layer -> ``[T, ...]``, e.g.
    ``{k: v[:, 0] for k, v in record_spikes(...).spikes.items()}``), four layers per row."""
    rows = math.ceil(len(spikes) / 4)
    fig, axes = plt.subplots(rows, 4, figsize=(13, 2.6 * rows), squeeze=False)
    for ax, (name, s) in zip(axes.flat, spikes.items()):
        raster(ax, s, neurons, seed)
        ax.set_title(f"{name}: rate {np.mean(s):.3f}", fontsize=7)
    for ax in axes.flat[len(spikes) :]:
        ax.axis("off")
    return _save(fig, path)


def feature_maps(spikes: np.ndarray, path: str, channels: int = 8, title: str = "") -> str:
    """Spike maps of one example's conv layer ``[T, H, W, C]``: time steps in rows, the ``channels`` most
    active channels in columns (white = spike)."""
    s = np.asarray(spikes, np.float32)
    chosen = np.argsort(-s.sum(axis=(0, 1, 2)), kind="stable")[: min(channels, s.shape[-1])]
    fig, axes = plt.subplots(
        s.shape[0], len(chosen), figsize=(1.4 * len(chosen), 1.4 * s.shape[0] + 0.4), squeeze=False
    )
    for t in range(s.shape[0]):
        for column, c in enumerate(chosen):
            ax = axes[t, column]
            ax.imshow(s[t, :, :, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_title(f"channel {c}", fontsize=7)
            if column == 0:
                ax.set_ylabel(f"t = {t + 1}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def membrane_traces(
    membrane: np.ndarray, spikes: np.ndarray, path: str, threshold: float = 1.0, neurons: int = 6, seed: int = 0
) -> str:
    """Post-reset potential V against time for ``neurons`` neurons (among those that fire, if any) of one
    example's layer (``membrane``, ``spikes``: ``[T, ...]``), spikes marked, the threshold dashed."""
    v = np.asarray(membrane, np.float32).reshape(membrane.shape[0], -1)
    s = np.asarray(spikes, np.float32).reshape(spikes.shape[0], -1)
    firing = np.flatnonzero(s.sum(0) > 0)
    pool = firing if len(firing) else np.arange(v.shape[1])
    chosen = np.sort(np.random.default_rng(seed).choice(pool, min(neurons, len(pool)), replace=False))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    t = np.arange(1, v.shape[0] + 1)
    for n in chosen:
        line = ax.plot(t, v[:, n], marker=".", lw=1)[0]
        fired = s[:, n] > 0
        ax.plot(t[fired], np.full(fired.sum(), threshold), "v", color=line.get_color(), ms=7)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label="threshold (▼ a spike)")
    ax.set_xticks(t)
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane potential V (after reset)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def threshold_schedules(schedules: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str) -> str:
    """θ_t after training (median over channels, 10–90 % band) next to its initial value, per encoding
    (``schedules``: label -> (learned ``[T, C]``, initial ``[T, C]``))."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (learned, _) in schedules.items():
        t = np.arange(1, learned.shape[0] + 1)
        line = ax.plot(t, np.median(learned, axis=1), marker="o", label=label)[0]
        low, high = np.percentile(learned, [10, 90], axis=1)
        ax.fill_between(t, low, high, color=line.get_color(), alpha=0.15)
    if schedules:
        initial = next(iter(schedules.values()))[1]
        t = np.arange(1, initial.shape[0] + 1)
        ax.plot(t, initial[:, 0], "k--", marker="x", label="initial (θ₀ = 1, λ = 0.5)")
        ax.set_xticks(t)
    ax.set_title("θ_t after training: median, 10–90 % of channels", fontsize=9)
    ax.set_xlabel("time step t")
    ax.set_ylabel("threshold θ_t")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def pr_curves(curves: Mapping[str, Sequence[float]], path: str) -> str:
    """Precision against recall (0, 0.01, …, 1) per class, at IoU 0.5."""
    fig, ax = plt.subplots(figsize=(6, 5))
    recall = np.linspace(0, 1, 101)
    for name, precision in curves.items():
        ax.plot(recall, precision, label=name, lw=1.2)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def boxes_on_images(
    images: Sequence[np.ndarray], boxes: Sequence[np.ndarray], class_names: Sequence[str], path: str
) -> str:
    """Images with their predicted boxes ``[n, 6]`` (x1, y1, x2, y2, score, class, in image pixels)."""
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.4), squeeze=False)
    colours = plt.cm.tab20(np.linspace(0, 1, 20))
    for ax, image, found in zip(axes[0], images, boxes):
        ax.imshow(image)
        for x1, y1, x2, y2, score, cls in found:
            colour = colours[int(cls) % 20]
            ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1.5))
            ax.text(x1, y1, f"{class_names[int(cls)]} {score:.2f}", color="white", fontsize=6, backgroundcolor=colour)
        ax.set_title(f"{len(found)} boxes", fontsize=8)
        ax.axis("off")
    return _save(fig, path)
