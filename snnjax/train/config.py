"""Configuration objects passed from the entry points down to the library, and resume checks.

Entry points (``experiments/*.py``) parse flags into these frozen dataclasses; nothing below them
reads flags. A config is saved as ``workdir/config.json``; re-running with the same workdir resumes
only if every field that affects the results is unchanged (see :func:`check_resume_config`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax.numpy as jnp

from snnjax.models.spiking import SpikingConfig

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str) -> Any:
    """The JAX dtype of a model config's ``dtype`` name (ValueError naming the accepted names)."""
    if name not in DTYPES:
        raise ValueError(f"dtype: got {name!r}; accepted: {', '.join(map(repr, DTYPES))}")
    return DTYPES[name]


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """AdamW with a per-epoch cosine schedule and linear warm-up (timm ``CosineLRScheduler``).

    The cosine runs over ``epochs - cooldown_epochs`` epochs from ``lr`` to ``min_lr``; the last
    ``cooldown_epochs`` stay at ``min_lr``; the first ``warmup_epochs`` ramp from ``warmup_lr``.
    ``clip_norm``: clip the global gradient norm to this value (None: no clipping).
    """

    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_epochs: int = 20
    warmup_lr: float = 1e-5
    cooldown_epochs: int = 10
    weight_decay: float = 0.06
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    clip_norm: float | None = None


@dataclasses.dataclass(frozen=True)
class SGDConfig:
    """SGD with Nesterov momentum as YOLOv5 v7.0 trains (hyp.scratch-low + train.py; yolov5n.md §3.5).

    The learning rate decays per epoch as ``lr·lf(e)``, lf(e) = (1 − e/E)(1 − lrf) + lrf. A warm-up runs
    over nw = max(round(warmup_epochs·batches per epoch), min_warmup_steps) batches, interpolating linearly
    in the batch count: biases' lr from ``warmup_bias_lr`` and the other parameters' from 0 to lr·lf(e),
    momentum from ``warmup_momentum`` to ``momentum``, and the accumulation from 1 to
    nominal_batch_size/batch_size batches (max(round(·), 1) after it). ``weight_decay`` (conv kernels
    only) is rescaled by batch·accumulate/nominal_batch_size; gradients are summed over the accumulated
    batches and clipped to ``clip_norm`` (None: no clipping). ``ema_decay``: evaluate and keep an EMA of
    all floating variables with decay ema_decay·(1 − exp(−updates/ema_tau)) (None: no EMA).
    """

    lr: float = 0.01
    lrf: float = 0.01
    momentum: float = 0.937
    weight_decay: float = 5e-4
    warmup_epochs: float = 3.0
    warmup_momentum: float = 0.8
    warmup_bias_lr: float = 0.1
    min_warmup_steps: int = 100
    nominal_batch_size: int = 64
    clip_norm: float | None = 10.0
    ema_decay: float | None = 0.9999
    ema_tau: float = 2000.0


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Settings of the generic training loop (task-independent).

    ``batch_size`` and ``eval_batch_size`` are global (over all devices and processes);
    ``num_devices=None`` uses every device; ``distributed`` calls ``jax.distributed.initialize``
    (the three ``coordinator_address``/``num_processes``/``process_id`` fields are passed to it when
    set; otherwise JAX detects the cluster). ``keep``: how many recent checkpoints to keep (the best
    by the task's metric is kept too).
    """

    workdir: str
    epochs: int = 410
    batch_size: int = 64
    eval_batch_size: int = 64
    seed: int = 35
    eval_every: int = 1
    log_every: int = 10
    keep: int = 2
    num_devices: int | None = None
    distributed: bool = False
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    progress: bool = True


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """QKFormer ``name`` ("L-D") with its encoder and neurons (``snnjax.models.qkformer.qkformer``);
    ``dtype``: "float32" or "bfloat16"."""

    name: str = "3-256"
    spiking: SpikingConfig = SpikingConfig(neuron="learnable")
    official_ssa_scan: bool = False
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Dataset and on-device augmentation (``snnjax.data``).

    ``dataset``: cifar10, cifar100, synthetic or npz:PATH. ``synthetic_*`` size the synthetic set.
    """

    dataset: str = "cifar10"
    data_dir: str | None = None
    augment: str = "official"
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.5
    erase_prob: float = 0.25
    synthetic_train: int = 2048
    synthetic_test: int = 512
    synthetic_image_size: int = 32


@dataclasses.dataclass(frozen=True)
class ClassificationConfig:
    """One image-classification experiment.

    ``init_from``: start from an orbax checkpoint (a workdir, its ``checkpoints`` folder or a step
    folder) or an official QKFormer PyTorch state dict (a file). ``eval_only``: evaluate instead of
    training (the workdir's latest checkpoint unless ``init_from``). ``shuffle_time``: at evaluation,
    permute every neuron's spike train over time (paper, Appendix B).
    """

    loop: LoopConfig
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    optim: OptimConfig = OptimConfig()
    init_from: str | None = None
    eval_only: bool = False
    shuffle_time: bool = False


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """YOLOv5n as an ANN or a spiking network (``snnjax.models.yolo.YOLOv5n``); ``dtype``: "float32" or
    "bfloat16". The spiking default starts every BatchNorm at γ = 2 (``experiments/voc.py``'s ``BN_SCALE``)."""

    mode: str = "snn"
    spiking: SpikingConfig = SpikingConfig(encoding="phase", neuron="learnable", bn_scale=2.0)
    sew: str = "add"
    dtype: str = "float32"


@dataclasses.dataclass(frozen=True)
class DetectionDataConfig:
    """Detection dataset (``snnjax.data.load_detection``): voc or synthetic, at ``img_size`` (square).

    ``max_boxes``: label slots per training image (None: the bound no mosaic exceeds); ``synthetic_*``
    size the synthetic set (images, classes, most objects per image).
    """

    dataset: str = "voc"
    data_dir: str | None = None
    img_size: int = 320
    max_boxes: int | None = None
    synthetic_train: int = 1024
    synthetic_test: int = 256
    synthetic_classes: int = 6
    synthetic_objects: int = 6


@dataclasses.dataclass(frozen=True)
class DetectionConfig:
    """One object-detection experiment (YOLOv5's recipe).

    ``init_from``: start from (or, with ``eval_only``, evaluate) an orbax checkpoint folder of the same
    model. ``eval_only``: evaluate instead of training (the workdir's latest checkpoint unless
    ``init_from``).
    """

    loop: LoopConfig
    model: DetectorConfig = DetectorConfig()
    data: DetectionDataConfig = DetectionDataConfig()
    optim: SGDConfig = SGDConfig()
    init_from: str | None = None
    eval_only: bool = False


# Fields that never change a run's results: they may differ between a run and its resumption.
RESUME_IGNORED = frozenset(
    {
        "loop.workdir",
        "loop.log_every",
        "loop.progress",
        "loop.num_devices",
        "loop.distributed",
        "loop.coordinator_address",
        "loop.num_processes",
        "loop.process_id",
        "data.data_dir",
        "eval_only",
        "shuffle_time",
    }
)


class ConfigMismatchError(ValueError):
    """A run was resumed with a config that differs from the one it started with."""


def to_dict(config: Any) -> dict:
    """A config dataclass as a JSON-ready nested dict."""
    return dataclasses.asdict(config)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_differences(saved: dict, current: dict, ignored: frozenset = RESUME_IGNORED) -> list[str]:
    """Names of the fields (``section.field``) that differ, as ``name: saved -> current``."""
    old, new = flatten(saved), flatten(current)
    names = sorted((set(old) | set(new)) - ignored)
    return [
        f"{n}: {old.get(n, '<absent>')!r} -> {new.get(n, '<absent>')!r}"
        for n in names
        if old.get(n, "<absent>") != new.get(n, "<absent>")
    ]


def check_resume_config(workdir: str, config: dict, *, write: bool = True) -> bool:
    """Compares ``config`` with ``workdir/config.json``; writes it when absent and ``write``.

    Returns whether a saved config existed. Raises :class:`ConfigMismatchError` naming the differing
    fields, so a changed command never silently restarts or continues another run.
    """
    path = os.path.join(workdir, "config.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        diff = config_differences(saved, config)
        if diff:
            raise ConfigMismatchError(
                f"workdir {workdir!r} holds a run with a different config; differing fields: "
                + "; ".join(diff)
                + ". Use another --workdir, or repeat the original flags to resume."
            )
        return True
    if write:
        os.makedirs(workdir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
    return False
