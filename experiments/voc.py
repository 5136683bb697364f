"""Train or evaluate the spiking YOLOv5n ("SEW-YOLOv5n") with a learnable temporal encoder on PASCAL VOC
(or on a synthetic detection set).

Defaults reproduce the paper's detection setting: YOLOv5n with SEW-ADD bottlenecks, T = 4, phase encoding
with learnable threshold (LT), learnable conv (LC) and surrogate gradient (SG), learnable LIF neurons
(τ = 2, V_th = 1, sigmoid surrogate; every BatchNorm starts at γ = 2, see BN_SCALE),
VOC07+12 trainval -> VOC07 test at 320×320, 300 epochs at batch 24, and YOLOv5 v7.0's scratch-low recipe
(SGD + Nesterov 0.937, lr 0.01 decaying linearly to 1e-4, 3 warm-up epochs, accumulation to a nominal
batch of 64, weight decay 5e-4, clipping at 10, EMA of the weights; mosaic, scale/translate, HSV and flip
augmentation). mAP is reported under YOLOv5's val.py rule (primary) and the VOC07/VOC12 devkit rules.
Re-running the same command with the same --workdir resumes; a finished run is never retrained.

Examples:
    python experiments/voc.py --encoding=phase --data_dir ~/tensorflow_datasets
    python experiments/voc.py --encoding=phase --dataset=synthetic            # quick CPU run
    python experiments/voc.py --mode=ann --data_dir ~/tensorflow_datasets     # the YOLOv5n baseline
    python experiments/voc.py --encoding=phase --dataset=synthetic --eval_only  # re-evaluate the last checkpoint
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from snnjax import cli  # noqa: E402
from snnjax.data.detection import DETECTION_DATASETS  # noqa: E402
from snnjax.data.detection_synthetic import MAX_CLASSES  # noqa: E402
from snnjax.layers import SEW_MODES  # noqa: E402
from snnjax.models.yolo import MODES  # noqa: E402
from snnjax.train.config import DetectionConfig, DetectionDataConfig, DetectorConfig, SGDConfig  # noqa: E402
from snnjax.train.optim import validate_sgd  # noqa: E402

# Applied with --dataset=synthetic to every flag not given explicitly: train, evaluate (mAP@0.5 ≈ 0.1) and
# checkpoint in about 2-3 minutes on 2 CPU cores. At YOLOv5's lr of 0.01 the spiking net learns too slowly
# for that budget (it needs ~3× the ANN's epochs), hence lr 0.05, 3 classes and 16 epochs.
SYNTHETIC_PRESET = {
    "img_size": 64,
    "T": 2,
    "epochs": 16,
    "batch_size": 16,
    "eval_batch_size": 64,
    "synthetic_train": 512,
    "synthetic_test": 128,
    "synthetic_classes": 3,
    "lr": 0.05,
    "nominal_batch_size": 16,
    "warmup_epochs": 1.0,
    "min_warmup_steps": 0,
}
EMA_DECAY = 0.9999  # YOLOv5's ModelEMA
# Initial BatchNorm scale of the spiking model (the paper does not give one). With PyTorch's γ = 1 a LIF
# (τ = 2, V_th = 1, hard reset) rarely fires at initialisation and the sigmoid surrogate (α = 4) passes so
# little gradient per layer that the backbone gets ~30× less than the ANN's; at lr 0.01 the synthetic run
# stayed flat for 48 epochs (mAP@0.5 0.005). γ = τ·V_th = 2 restores the ANN's depth profile of gradients
# (γ >= 3 explodes) and learned (0.060 in the same run). experiments/init_gradients.py measures it; the
# README ("Detection") has the figures.
BN_SCALE = 2.0

RESULT_KEYS = ("map50", "map50_95", "voc07_map50", "voc12_map50", "mean_firing_rate", "params", "wall_time_s")


def build_parser(suppress_defaults: bool = False) -> argparse.ArgumentParser:
    """The flag parser; with ``suppress_defaults`` only explicitly given flags appear in the result."""
    flags = cli.Flags("voc.py", __doc__, SYNTHETIC_PRESET, suppress_defaults)
    add, toggle = flags.add, flags.toggle
    add("--mode", choices=MODES, default="snn", help="spiking network, or the YOLOv5n ANN baseline")
    cli.add_spiking_flags(
        flags, encoding="phase", bn_scale=BN_SCALE, lc_channels_help="width of the LC conv (default: the stem's 16)"
    )
    add("--sew", choices=SEW_MODES, default="add", help="SEW connect function of the backbone bottlenecks")
    add("--dataset", choices=DETECTION_DATASETS, default="voc", help="VOC07+12 (prepared tfds) or synthetic")
    add("--data_dir", default=None, help="prepared tensorflow-datasets directory (default: $TFDS_DATA_DIR)")
    add("--img_size", type=int, default=320, help="square input size, a multiple of 32")
    add("--max_boxes", type=int, default=None, help="label slots per training image (default: none dropped)")
    add("--synthetic_train", type=int, default=1024, help="synthetic training images")
    add("--synthetic_test", type=int, default=256, help="synthetic test images")
    add("--synthetic_classes", type=int, default=6, help=f"synthetic classes (1 to {MAX_CLASSES})")
    add("--synthetic_objects", type=int, default=6, help="most objects in one synthetic image")
    add("--epochs", type=int, default=300, help="training epochs")
    add("--batch_size", type=int, default=24, help="global batch size (all devices)")
    add("--eval_batch_size", type=int, default=48, help="global evaluation batch size")
    add("--lr", type=float, default=0.01, help="initial learning rate (YOLOv5's lr0)")
    add("--lrf", type=float, default=0.01, help="final learning rate as a fraction of --lr (linear decay)")
    add("--momentum", type=float, default=0.937, help="SGD Nesterov momentum")
    add("--weight_decay", type=float, default=5e-4, help="decay of conv kernels, at the nominal batch size")
    add("--warmup_epochs", type=float, default=3.0, help="warm-up length in epochs")
    add("--min_warmup_steps", type=int, default=100, help="warm-up length at least, in batches")
    add("--warmup_momentum", type=float, default=0.8, help="momentum at the start of the warm-up")
    add("--warmup_bias_lr", type=float, default=0.1, help="biases' learning rate at the start of the warm-up")
    add("--nominal_batch_size", type=int, default=64, help="accumulate gradients to about this batch size")
    add("--clip_norm", type=float, default=10.0, help="clip the global gradient norm")
    toggle("--ema", True, f"evaluate and save an EMA of the weights (decay {EMA_DECAY}·(1 − exp(−updates/2000)))")
    cli.add_run_flags(flags, workdir_help="run folder (default: runs/voc/<dataset>_<mode>_<encoding>_...)")
    add("--init_from", default=None, help="orbax checkpoint folder (a workdir) of the same model to start from")
    return flags.parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """Parsed flags (with the synthetic preset applied) and the preset values that were applied."""
    return cli.parse_with_preset(build_parser, argv, SYNTHETIC_PRESET)


def validate(args: argparse.Namespace) -> None:
    """Raises ValueError('--flag: ...') for values argparse cannot check; cheap (no model, no data)."""
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
            "synthetic_train",
            "synthetic_test",
            "synthetic_objects",
        ),
        ("lc_channels", "num_devices", "max_boxes", "bn_scale"),
    )
    if args.img_size < 32 or args.img_size % 32:
        raise ValueError(f"--img_size: must be a positive multiple of 32 (the largest stride), got {args.img_size}")
    if not 1 <= args.synthetic_classes <= MAX_CLASSES:
        raise ValueError(f"--synthetic_classes: must be in [1, {MAX_CLASSES}], got {args.synthetic_classes}")
    if args.mode == "snn" and args.encoding == "direct" and not args.lc:
        raise ValueError("--lc: the 'direct' encoding needs --lc (it feeds the first conv's output to a LIF)")
    if args.init_from is not None and not os.path.exists(args.init_from):
        raise ValueError(f"--init_from: no such file or folder {args.init_from!r}")
    try:
        validate_sgd(optim_config(args), args.epochs)
    except ValueError as e:
        raise ValueError(f"--{e}") from None


def optim_config(args: argparse.Namespace) -> SGDConfig:
    """The SGD recipe described by the flags."""
    return SGDConfig(
        lr=args.lr,
        lrf=args.lrf,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs,
        warmup_momentum=args.warmup_momentum,
        warmup_bias_lr=args.warmup_bias_lr,
        min_warmup_steps=args.min_warmup_steps,
        nominal_batch_size=args.nominal_batch_size,
        clip_norm=args.clip_norm,
        ema_decay=EMA_DECAY if args.ema else None,
    )


def default_workdir(args: argparse.Namespace) -> str:
    """``runs/voc/<dataset>_<img_size>_ann_s<seed>`` or
    ``runs/voc/<dataset>_<img_size>_<encoding>[+lt+lc+sg]_T<T>_<neuron>_<sew>_s<seed>``."""
    if args.mode == "ann":
        return os.path.join("runs", "voc", f"{args.dataset}_{args.img_size}_ann_s{args.seed}")
    name = f"{args.dataset}_{args.img_size}_{cli.spiking_name(args)}_{args.sew}_s{args.seed}"
    return os.path.join("runs", "voc", name)


def to_config(args: argparse.Namespace) -> DetectionConfig:
    """The experiment config described by the (validated) flags."""
    return DetectionConfig(
        loop=cli.loop_config(args, args.workdir or default_workdir(args)),
        model=DetectorConfig(mode=args.mode, spiking=cli.spiking_config(args), sew=args.sew, dtype=args.dtype),
        data=DetectionDataConfig(
            dataset=args.dataset,
            data_dir=args.data_dir,
            img_size=args.img_size,
            max_boxes=args.max_boxes,
            synthetic_train=args.synthetic_train,
            synthetic_test=args.synthetic_test,
            synthetic_classes=args.synthetic_classes,
            synthetic_objects=args.synthetic_objects,
        ),
        optim=optim_config(args),
        init_from=args.init_from,
        eval_only=args.eval_only,
    )


def main(argv: list[str] | None = None) -> dict:
    """Parses flags, prints the config, then trains/resumes or evaluates; returns the results."""
    from snnjax.train.detection_task import run

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
