"""Flag helpers shared by the experiment entry points (``experiments/*.py``).

One parser skeleton whose defaults can be suppressed (to learn which flags were given, so a dataset
preset fills only the others), the temporal-encoder and neuron flags, the run flags, and the
``LoopConfig`` they describe. Only entry points use this module; nothing below them reads flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from snnjax.encoding import KINDS
from snnjax.models.spiking import SpikingConfig
from snnjax.neurons import NEURONS
from snnjax.surrogate import SURROGATES
from snnjax.train.config import ConfigMismatchError, LoopConfig


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description's layout and shows each flag's default (unset ones explain theirs)."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


class Flags:
    """An ``argparse`` parser whose ``add``/``toggle`` drop every default when ``suppress_defaults``."""

    def __init__(self, prog: str, description: str, preset: dict, suppress_defaults: bool = False):
        shown = ", ".join(f"--{k}={v}" for k, v in preset.items())
        self.suppress_defaults = suppress_defaults
        self.parser = argparse.ArgumentParser(
            prog=prog,
            description=description,
            formatter_class=HelpFormatter,
            argument_default=argparse.SUPPRESS if suppress_defaults else None,
            epilog=f"With --dataset=synthetic these defaults apply to flags not given: {shown}.",
        )

    def add(self, *flags: str, **kwargs) -> None:
        if self.suppress_defaults:
            kwargs.pop("default", None)
        self.parser.add_argument(*flags, **kwargs)

    def toggle(self, flag: str, default: bool, help: str) -> None:
        self.add(flag, action=argparse.BooleanOptionalAction, default=default, help=help)


def add_spiking_flags(flags: Flags, *, encoding: str, lc_channels_help: str, bn_scale: float = 1.0) -> None:
    """--encoding --T --neuron --lt/--lc/--sg --lc_channels --surrogate --bn_scale --dtype."""
    flags.add("--encoding", choices=KINDS, default=encoding, help="temporal encoding of the static image")
    flags.add("--T", type=int, default=4, help="time steps")
    flags.add("--neuron", choices=tuple(NEURONS), default="learnable", help="LIF or learnable LIF (paper eq. 4)")
    flags.toggle("--lt", True, "learnable encoder threshold θ_0 and decay λ (LT)")
    flags.toggle("--lc", True, "the encoder owns the first conv+BN (learnable conv, LC); 'direct' needs it")
    flags.toggle("--sg", True, "surrogate gradient through the encoder's spikes (SG)")
    flags.add("--lc_channels", type=int, default=None, help=lc_channels_help)
    flags.add("--surrogate", choices=(*SURROGATES, "none"), default="sigmoid", help="surrogate gradient of all neurons")
    flags.add(
        "--bn_scale",
        type=float,
        default=bn_scale,
        help="initial BatchNorm scale γ of the spiking model (1: PyTorch's; 2 = τ·V_th: see README)",
    )
    flags.add("--dtype", choices=("float32", "bfloat16"), default="float32", help="compute dtype (params stay float32)")


def spiking_config(args: argparse.Namespace) -> SpikingConfig:
    """The ``SpikingConfig`` of the flags that :func:`add_spiking_flags` added."""
    return SpikingConfig(
        T=args.T,
        encoding=args.encoding,
        learnable_threshold=args.lt,
        learnable_conv=args.lc,
        surrogate_gradient=args.sg,
        lc_channels=args.lc_channels,
        neuron=args.neuron,
        surrogate=args.surrogate,
        bn_scale=args.bn_scale,
    )


def spiking_name(args: argparse.Namespace) -> str:
    """``<encoding>[+lt][+lc][+sg]_T<T>_<neuron>[_bn<bn_scale>]``: the spiking part of a default workdir name
    (the BN scale only when it is not 1)."""
    switches = "".join(f"+{k}" for k in ("lt", "lc", "sg") if getattr(args, k))
    bn = "" if args.bn_scale == 1 else f"_bn{args.bn_scale:g}"
    return f"{args.encoding}{switches}_T{args.T}_{args.neuron}{bn}"


def add_run_flags(flags: Flags, *, workdir_help: str) -> None:
    """--seed --workdir --eval_every --log_every --keep --num_devices --progress, multi-process flags,
    --eval_only."""
    flags.add("--seed", type=int, default=35, help="the paper uses 35, 1000 and 0")
    flags.add("--workdir", default=None, help=workdir_help)
    flags.add("--eval_every", type=int, default=1, help="evaluate every N epochs (and after the last)")
    flags.add("--log_every", type=int, default=10, help="update the progress bar every N steps")
    flags.add("--keep", type=int, default=2, help="recent checkpoints to keep (the best is kept too)")
    flags.add("--num_devices", type=int, default=None, help="devices to use (default: all)")
    flags.toggle("--progress", True, "show progress bars")
    flags.toggle("--distributed", False, "multi-process run: call jax.distributed.initialize")
    flags.add("--coordinator_address", default=None, help="for --distributed (default: detected)")
    flags.add("--num_processes", type=int, default=None, help="for --distributed (default: detected)")
    flags.add("--process_id", type=int, default=None, help="for --distributed (default: detected)")
    flags.add(
        "--eval_only",
        action="store_true",
        default=False,
        help="evaluate the workdir's last checkpoint (or --init_from) instead of training; writes eval.json",
    )


def parse_with_preset(
    build_parser: Callable[[bool], argparse.ArgumentParser], argv: Sequence[str] | None, preset: dict
) -> tuple[argparse.Namespace, dict]:
    """Parsed flags, with ``preset`` filling the flags not given when ``--dataset=synthetic``; also
    returns the preset values that were applied. ``build_parser(suppress_defaults)`` builds the parser."""
    args = build_parser(False).parse_args(argv)
    explicit = vars(build_parser(True).parse_args(argv))
    applied = {k: v for k, v in preset.items() if k not in explicit} if args.dataset == "synthetic" else {}
    for k, v in applied.items():
        setattr(args, k, v)
    return args, applied


def check_positive(args: argparse.Namespace, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    """Raises ``ValueError("--flag: ...")`` unless every ``required`` flag is >= 1 and every given
    ``optional`` one is > 0."""
    for flag in required:
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag}: must be >= 1, got {getattr(args, flag)}")
    for flag in optional:
        if getattr(args, flag) is not None and getattr(args, flag) <= 0:
            raise ValueError(f"--{flag}: must be > 0 when given, got {getattr(args, flag)}")


def loop_config(args: argparse.Namespace, workdir: str) -> LoopConfig:
    """The ``LoopConfig`` of the run flags (and --epochs, --batch_size, --eval_batch_size)."""
    return LoopConfig(
        workdir=workdir,
        epochs=args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size,
        seed=args.seed,
        eval_every=args.eval_every,
        log_every=args.log_every,
        keep=args.keep,
        num_devices=args.num_devices,
        distributed=args.distributed,
        coordinator_address=args.coordinator_address,
        num_processes=args.num_processes,
        process_id=args.process_id,
        progress=args.progress,
    )


def run_entry_point(
    argv: Sequence[str] | None,
    *,
    build_parser: Callable,
    parse_args: Callable,
    validate: Callable,
    to_config: Callable,
    run: Callable[[Any], dict],
    result_keys: Sequence[str],
) -> dict:
    """Parses and validates flags (a bad value: argparse's ``<prog>: error: argument --flag: ...``, exit 2),
    prints the applied preset and the workdir, runs the experiment and prints ``result_keys``."""
    parser = build_parser()
    args, applied = parse_args(argv)
    try:
        validate(args)
    except ValueError as e:
        parser.error(f"argument {e}")
    config = to_config(args)
    if applied:
        print("synthetic preset: " + " ".join(f"--{k}={v}" for k, v in applied.items()), flush=True)
    print(f"workdir: {config.loop.workdir}", flush=True)
    try:
        results = run(config)
    except (ConfigMismatchError, FileNotFoundError) as e:  # a wrong workdir, unprepared data, ...
        sys.exit(f"{parser.prog}: error: {e}")
    print(
        "results: " + " ".join(f"{k}={results[k]:.4g}" for k in result_keys if isinstance(results.get(k), (int, float)))
    )
    return results
