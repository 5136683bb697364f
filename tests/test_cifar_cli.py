"""experiments/cifar.py: flags -> config, the synthetic preset, and one-line errors for bad values."""

import importlib.util
import os

import pytest

from snnjax.models.spiking import SpikingConfig
from snnjax.train.config import ClassificationConfig

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "cifar.py")
_spec = importlib.util.spec_from_file_location("cifar_cli", _PATH)
cifar = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cifar)


def _config(*argv: str) -> ClassificationConfig:
    args, _ = cifar.parse_args(list(argv))
    cifar.validate(args)
    return cifar.to_config(args)


def test_defaults_are_the_papers_cifar_setting():
    c = _config()
    assert c.model.name == "3-256" and not c.model.official_ssa_scan
    assert c.model.spiking == SpikingConfig(
        T=4,
        encoding="ttfs",
        neuron="learnable",
        learnable_threshold=True,
        learnable_conv=True,
        surrogate_gradient=True,
        surrogate="sigmoid",
    )
    assert (c.loop.batch_size, c.loop.epochs, c.loop.seed, c.data.augment) == (64, 410, 35, "official")
    o = c.optim
    assert (o.lr, o.min_lr, o.warmup_epochs, o.warmup_lr, o.cooldown_epochs, o.weight_decay, o.clip_norm) == (
        1e-3,
        1e-5,
        20,
        1e-5,
        10,
        0.06,
        None,
    )
    assert c.loop.workdir == os.path.join("runs", "cifar", "cifar10_3-256_ttfs+lt+lc+sg_T4_learnable_s35")


def test_flags_reach_the_config():
    c = _config(
        "--encoding=phase",
        "--no-lt",
        "--no-sg",
        "--lc_channels=3",
        "--neuron=lif",
        "--T=2",
        "--dtype=bfloat16",
        "--clip_norm=1.0",
        "--workdir=/tmp/x",
        "--eval_only",
        "--shuffle_time",
    )
    assert c.model.spiking == SpikingConfig(
        T=2, encoding="phase", learnable_threshold=False, surrogate_gradient=False, lc_channels=3, neuron="lif"
    )
    assert c.model.dtype == "bfloat16"
    assert (c.optim.clip_norm, c.loop.workdir, c.eval_only, c.shuffle_time) == (1.0, "/tmp/x", True, True)


def test_synthetic_preset_fills_only_flags_not_given():
    args, applied = cifar.parse_args(["--dataset=synthetic", "--epochs=5", "--T=4"])
    assert "epochs" not in applied and "T" not in applied
    assert (args.epochs, args.T, args.model) == (5, 4, cifar.SYNTHETIC_PRESET["model"])
    assert applied["model"] == cifar.SYNTHETIC_PRESET["model"]
    assert cifar.parse_args(["--dataset=cifar10"])[1] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--encoding=spiky"], "--encoding: invalid choice: 'spiky'"),
        (["--model=3-100"], "--model: got '3-100'; accepted: 'L-D'"),
        (["--model=big"], "--model: got 'big'"),
        (["--dataset=imagenet"], "--dataset: got 'imagenet'; accepted: cifar10, cifar100, synthetic, npz:PATH"),
        (["--dataset=npz:/no/such.npz"], "--dataset: no file"),
        (["--T=0"], "--T: must be >= 1"),
        (["--bn_scale=-1"], "--bn_scale: must be > 0"),
        (["--encoding=direct", "--no-lc"], "--lc: the 'direct' encoding needs --lc"),
        (["--official_ssa_scan"], "--official_ssa_scan: accepted only with --neuron=lif"),
        (["--warmup_epochs=401"], "--warmup_epochs: must be in [0, 400]"),
        (["--augment=heavy"], "--augment: invalid choice"),
        (["--init_from=/no/such/ckpt"], "--init_from: no such file or folder"),
        (["--shuffle_time"], "--shuffle_time: accepted only with --eval_only"),
    ],
)
def test_bad_flags_fail_fast_with_a_one_line_error(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("snnjax.train.classification.run", lambda config: pytest.fail("ran with a bad flag"))
    with pytest.raises(SystemExit) as exit_info:
        cifar.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("cifar.py: error: argument " + message), error
