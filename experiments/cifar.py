"""Train or evaluate QKFormer with a learnable temporal encoder on CIFAR-10/100 (or synthetic/npz data).

Defaults reproduce the paper's CIFAR setting: QKFormer-3-256, T = 4, TTFS encoding with learnable
threshold (LT), learnable conv (LC) and surrogate gradient (SG), learnable LIF neurons, and the
official QKFormer recipe (AdamW 1e-3, weight decay 0.06, batch 64, 400 + 10 cooldown epochs, cosine
with 20 warm-up epochs, RandAugment + mixup + label smoothing + random erasing). Re-running the same
command with the same --workdir resumes; a finished run is never retrained or overwritten.

Examples:
    python experiments/cifar.py --encoding=ttfs --dataset=cifar10 --data_dir ~/tensorflow_datasets
    python experiments/cifar.py --encoding=ttfs --dataset=synthetic          # quick CPU run
    python experiments/cifar.py --encoding=ttfs --dataset=synthetic --eval_only --shuffle_time  # Appendix B
    python experiments/cifar.py --eval_only --init_from qkformer.pth --encoding=direct --neuron=lif \\
        --model=4-384 --official_ssa_scan
"""

from __future__ import annotations

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from snnjax import cli  # noqa: E402
from snnjax.models.qkformer import qkformer  # noqa: E402
from snnjax.train.config import ClassificationConfig, DataConfig, ModelConfig, OptimConfig  # noqa: E402

DATASETS = ("cifar10", "cifar100", "synthetic", "npz:PATH")
# Applied with --dataset=synthetic to every flag not given explicitly: train, evaluate and checkpoint in about
# two minutes on 2 CPU cores (RandAugment alone adds ~25 s of CPU compile time, hence crop_flip).
SYNTHETIC_PRESET = {
    "model": "3-64",
    "T": 2,
    "image_size": 16,
    "epochs": 8,
    "warmup_epochs": 0,
    "cooldown_epochs": 0,
    "batch_size": 32,
    "eval_batch_size": 128,
    "lr": 5e-3,
    "augment": "crop_flip",
}

RESULT_KEYS = ("accuracy", "loss", "mean_firing_rate", "params", "wall_time_s")


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The flag parser; with ``suppress_defaults`` only explicitly given flags appear in the result."""
    flags = cli.Flags("cifar.py", __doc__, SYNTHETIC_PRESET, suppress_defaults)
    add, toggle = flags.add, flags.toggle
    add(
        "--model",
        default="3-256",
        help="QKFormer 'L-D' (depth L >= 2, width D a multiple of 32): "
        "3-256 (paper), 4-384 (official CIFAR config), ...",
    )
    cli.add_spiking_flags(flags, encoding="ttfs", lc_channels_help="width of the LC conv (default: the model's D/8)")
    toggle("--official_ssa_scan", False, "reproduce the official SSA proj_lif bug (needed for official weights)")
    add("--dataset", default="cifar10", help=f"one of {', '.join(DATASETS)}")
    add("--data_dir", default=None, help="prepared tensorflow-datasets directory (default: $TFDS_DATA_DIR)")
    add("--augment", choices=("official", "crop_flip", "none"), default="official", help="train augmentation")
    add("--label_smoothing", type=float, default=0.1, help="label smoothing of the soft targets")
    add("--mixup_alpha", type=float, default=0.5, help="mixup Beta(α, α) (official augmentation)")
    add("--erase_prob", type=float, default=0.25, help="random-erasing probability (official augmentation)")
    add("--image_size", type=int, default=32, help="synthetic images' size")
    add("--synthetic_train", type=int, default=2048, help="synthetic training images")
    add("--synthetic_test", type=int, default=512, help="synthetic test images")
    add("--epochs", type=int, default=410, help="epochs in all, cooldown included")
    add("--batch_size", type=int, default=64, help="global batch size (all devices)")
    add("--eval_batch_size", type=int, default=64, help="global evaluation batch size")
    add("--lr", type=float, default=1e-3, help="peak learning rate")
    add("--min_lr", type=float, default=1e-5, help="final learning rate of the cosine")
    add("--warmup_epochs", type=int, default=20, help="linear warm-up epochs")
    add("--warmup_lr", type=float, default=1e-5, help="learning rate of the first warm-up epoch")
    add("--cooldown_epochs", type=int, default=10, help="final epochs at --min_lr")
    add("--weight_decay", type=float, default=0.06, help="AdamW decay of conv/dense kernels")
    add("--clip_norm", type=float, default=None, help="clip the global gradient norm (default: off)")
    cli.add_run_flags(flags, workdir_help="run folder (default: runs/cifar/<dataset>_<model>_<encoding>_...)")
    add("--init_from", default=None, help="orbax checkpoint folder or official QKFormer PyTorch state dict")
    add(
        "--shuffle_time",
        action="store_true",
        default=False,
        help="with --eval_only: permute each neuron's spikes over time (Appendix B); writes eval_shuffle_time.json",
    )
    return flags.parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """Parsed flags (with the synthetic preset applied) and the preset values that were applied."""
    return cli.parse_with_preset(build_parser, argv, SYNTHETIC_PRESET)


def validate(args: argparse.Namespace) -> None:
    """Raises ValueError('--flag: ...') for values argparse cannot check; cheap (no model, no data)."""
    if not re.fullmatch(r"cifar10|cifar100|synthetic|npz:.+", args.dataset):
        raise ValueError(f"--dataset: got {args.dataset!r}; accepted: {', '.join(DATASETS)}")
    if args.dataset.startswith("npz:") and not os.path.isfile(args.dataset[4:]):
        raise ValueError(f"--dataset: no file {args.dataset[4:]!r}")
    try:
        qkformer(args.model)
    except ValueError as e:
        raise ValueError(f"--{e}") from None
    cli.check_positive(
        args,
        (
            "T",
            "epochs",
            "batch_size",
            "eval_batch_size",
            "eval_every",
            "log_every",
            "keep",
            "image_size",
            "synthetic_train",
            "synthetic_test",
        ),
        ("lc_channels", "num_devices", "clip_norm", "bn_scale"),
    )
    if args.encoding == "direct" and not args.lc:
        raise ValueError("--lc: the 'direct' encoding needs --lc (it feeds the first conv's output to a LIF)")
    if args.official_ssa_scan and args.neuron != "lif":
        raise ValueError("--official_ssa_scan: accepted only with --neuron=lif")
    if args.shuffle_time and not args.eval_only:
        raise ValueError("--shuffle_time: accepted only with --eval_only (it tests a trained model)")
    if args.init_from is not None and not os.path.exists(args.init_from):
        raise ValueError(f"--init_from: no such file or folder {args.init_from!r}")
    if not 0 <= args.cooldown_epochs < args.epochs:
        raise ValueError(f"--cooldown_epochs: must be in [0, --epochs={args.epochs}), got {args.cooldown_epochs}")
    if not 0 <= args.warmup_epochs <= args.epochs - args.cooldown_epochs:
        raise ValueError(
            f"--warmup_epochs: must be in [0, {args.epochs - args.cooldown_epochs}] "
            f"(--epochs minus --cooldown_epochs), got {args.warmup_epochs}"
        )


def default_workdir(args: argparse.Namespace) -> str:
    """``runs/cifar/<dataset>_<model>_<encoding>[+lt+lc+sg]_T<T>_<neuron>_s<seed>``."""
    dataset = re.sub(r"[^A-Za-z0-9]+", "-", os.path.splitext(os.path.basename(args.dataset))[0])
    return os.path.join("runs", "cifar", f"{dataset}_{args.model}_{cli.spiking_name(args)}_s{args.seed}")


def to_config(args: argparse.Namespace) -> ClassificationConfig:
    """The experiment config described by the (validated) flags."""
    return ClassificationConfig(
        loop=cli.loop_config(args, args.workdir or default_workdir(args)),
        model=ModelConfig(
            name=args.model,
            spiking=cli.spiking_config(args),
            official_ssa_scan=args.official_ssa_scan,
            dtype=args.dtype,
        ),
        data=DataConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            augment=args.augment,
            label_smoothing=args.label_smoothing,
            mixup_alpha=args.mixup_alpha,
            erase_prob=args.erase_prob,
            synthetic_train=args.synthetic_train,
            synthetic_test=args.synthetic_test,
            synthetic_image_size=args.image_size,
        ),
        optim=OptimConfig(
            lr=args.lr,
            min_lr=args.min_lr,
            warmup_epochs=args.warmup_epochs,
            warmup_lr=args.warmup_lr,
            cooldown_epochs=args.cooldown_epochs,
            weight_decay=args.weight_decay,
            clip_norm=args.clip_norm,
        ),
        init_from=args.init_from,
        eval_only=args.eval_only,
        shuffle_time=args.shuffle_time,
    )


def main(argv: list[str] | None = None) -> dict:
    """Parses flags, prints the config, then trains/resumes or evaluates; returns the results."""
    from snnjax.train.classification import run

    return cli.run_entry_point(
        argv,
        build_parser=build_parser,
        parse_args=parse_args,
        validate=validate,
        to_config=to_config,
        run=run,
        result_keys=RESULT_KEYS,
    )


if __name__ == "__main__":
    main()
