"""experiments/cifar.py: flags -> config, the synthetic preset, and one-line errors for bad values."""

import os

import pytest

from snnjax.cli import cifar
from snnjax.engine import flags
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import replace_paths
from snnjax.tasks.classification import PAPER, SYNTHETIC, ClassificationConfig


def _config(*argv: str) -> ClassificationConfig:
    return flags.parse(cifar.EXPERIMENT, list(argv))[0]


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
    assert replace_paths(c, {"loop.workdir": None}) == PAPER
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
        "--tau=3",
        "--v_reset=none",
    )
    assert c.model.spiking == SpikingConfig(
        T=2,
        encoding="phase",
        learnable_threshold=False,
        surrogate_gradient=False,
        lc_channels=3,
        neuron="lif",
        tau=3.0,
        v_reset=None,
    )
    assert c.model.dtype == "bfloat16"
    assert (c.optim.clip_norm, c.loop.workdir, c.loop.eval_only, c.shuffle_time) == (1.0, "/tmp/x", True, True)


def test_synthetic_preset_fills_only_flags_not_given():
    c, applied = flags.parse(cifar.EXPERIMENT, ["--dataset=synthetic", "--epochs=5", "--T=4"])
    assert "epochs" not in applied and "T" not in applied
    assert (c.loop.epochs, c.model.spiking.T, c.model.name) == (5, 4, SYNTHETIC.model.name)
    assert applied["model"] == SYNTHETIC.model.name
    assert flags.parse(cifar.EXPERIMENT, ["--dataset=cifar10"])[1] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--encoding=spiky"], "--encoding: invalid choice: 'spiky'"),
        (["--model=3-100"], "--model: got '3-100'; accepted: 'L-D'"),
        (["--model=big"], "--model: got 'big'"),
        (["--dataset=imagenet"], "--dataset: got 'imagenet'; accepted: cifar10, cifar100, synthetic, or npz:PATH"),
        (
            ["--dataset=npz:/no/such.npz"],
            "--dataset: got 'npz:/no/such.npz'; accepted: cifar10, cifar100, synthetic, or npz:PATH of an existing",
        ),
        (["--T=0"], "--T: got 0; accepted: an int >= 1"),
        (["--bn_scale=-1"], "--bn_scale: got -1.0; accepted: a finite number > 0"),
        (["--lr=nan"], "--lr: got nan; accepted: a finite number > 0"),
        (["--lr=-1"], "--lr: got -1.0; accepted: a finite number > 0"),
        (["--label_smoothing=1.5"], "--label_smoothing: got 1.5; accepted: a finite number in [0, 1)"),
        (["--mixup_alpha=-1"], "--mixup_alpha: got -1.0; accepted: a finite number >= 0"),
        (["--erase_prob=2"], "--erase_prob: got 2.0; accepted: a finite number in [0, 1]"),
        (["--encoding=direct", "--no-lc"], "--lc: got False; accepted: True with encoding='direct'"),
        (["--official_ssa_scan"], "--official_ssa_scan: got True; accepted: True only with neuron='lif'"),
        (["--warmup_epochs=401"], "--warmup_epochs: got 401; accepted: an int in [0, epochs - cooldown_epochs = 400]"),
        (["--augment=heavy"], "--augment: invalid choice"),
        (
            ["--init_from=/no/such/ckpt"],
            "--init_from: got '/no/such/ckpt'; accepted: none (fresh variables) or an existing",
        ),
        (["--shuffle_time"], "--shuffle_time: got True; accepted: True only with eval_only"),
    ],
)
def test_bad_flags_fail_fast_with_a_one_line_error(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(flags, "run", lambda task: pytest.fail("ran with a bad flag"))
    with pytest.raises(SystemExit) as exit_info:
        cifar.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("cifar.py: error: argument " + message), error
