"""Shared flag helpers of the experiment entry points."""

import argparse

import pytest

from snnjax import cli
from snnjax.models.spiking import SpikingConfig

PRESET = {"T": 2, "epochs": 3}


def build(suppress_defaults=False):
    flags = cli.Flags("x.py", "test", PRESET, suppress_defaults)
    flags.add("--dataset", default="real")
    flags.add("--epochs", type=int, default=100)
    flags.add("--batch_size", type=int, default=8)
    flags.add("--eval_batch_size", type=int, default=8)
    cli.add_spiking_flags(flags, encoding="phase", lc_channels_help="width")
    cli.add_run_flags(flags, workdir_help="folder")
    return flags.parser


def test_preset_fills_only_flags_not_given_and_only_for_synthetic():
    args, applied = cli.parse_with_preset(build, ["--dataset=synthetic", "--T", "6"], PRESET)
    assert (args.T, args.epochs, applied) == (6, 3, {"epochs": 3})
    args, applied = cli.parse_with_preset(build, [], PRESET)
    assert (args.T, args.epochs, args.encoding, applied) == (4, 100, "phase", {})


def test_epilog_names_the_preset_and_toggles_have_negations():
    parser = build()
    assert "--T=2, --epochs=3" in parser.epilog
    assert parser.parse_args(["--no-lc", "--no-progress"]).lc is False


def test_spiking_flags_become_one_spiking_config_and_a_workdir_name():
    args = build().parse_args(
        [
            "--T",
            "2",
            "--encoding",
            "ttfs",
            "--no-sg",
            "--lc_channels",
            "3",
            "--neuron",
            "lif",
            "--surrogate",
            "atan",
            "--bn_scale",
            "2",
        ]
    )
    assert cli.spiking_config(args) == SpikingConfig(
        T=2,
        encoding="ttfs",
        learnable_threshold=True,
        learnable_conv=True,
        surrogate_gradient=False,
        lc_channels=3,
        neuron="lif",
        surrogate="atan",
        bn_scale=2.0,
    )
    assert cli.spiking_name(args) == "ttfs+lt+lc_T2_lif_bn2"
    assert cli.spiking_name(build().parse_args([])) == "phase+lt+lc+sg_T4_learnable"


def test_check_positive_names_the_flag():
    args = argparse.Namespace(T=0, lc_channels=None, clip_norm=-1.0)
    with pytest.raises(ValueError, match=r"^--T: must be >= 1, got 0$"):
        cli.check_positive(args, ("T",))
    with pytest.raises(ValueError, match=r"^--clip_norm: must be > 0 when given"):
        cli.check_positive(
            argparse.Namespace(T=1, lc_channels=None, clip_norm=-1.0), ("T",), ("lc_channels", "clip_norm")
        )


def test_loop_config_takes_the_run_flags():
    args = build().parse_args(["--seed", "7", "--num_devices", "2", "--no-progress"])
    config = cli.loop_config(args, "/tmp/run")
    assert (config.workdir, config.seed, config.num_devices, config.progress, config.epochs) == (
        "/tmp/run",
        7,
        2,
        False,
        100,
    )


def test_run_entry_point_validates_runs_and_prints_results(capsys):
    def validate(args):
        if args.T > 8:
            raise ValueError("--T: too many")

    def to_config(args):
        return argparse.Namespace(loop=argparse.Namespace(workdir="/tmp/w"), T=args.T)

    def run(config):
        return {"accuracy": 0.5, "T": config.T}

    parse = lambda argv: cli.parse_with_preset(build, argv, PRESET)
    kwargs = dict(
        build_parser=build, parse_args=parse, validate=validate, to_config=to_config, run=run, result_keys=("accuracy",)
    )
    assert cli.run_entry_point(["--dataset=synthetic"], **kwargs) == {"accuracy": 0.5, "T": 2}
    out = capsys.readouterr().out
    assert "synthetic preset: --T=2 --epochs=3" in out and "workdir: /tmp/w" in out and "accuracy=0.5" in out
    with pytest.raises(SystemExit) as exit_info:
        cli.run_entry_point(["--T", "9"], **kwargs)
    assert exit_info.value.code == 2 and "argument --T: too many" in capsys.readouterr().err
