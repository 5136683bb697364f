"""experiments/voc.py: flags -> config, the synthetic preset, and one-line errors for bad values."""

import os

import pytest

from snnjax.cli import voc
from snnjax.engine import flags
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import replace_paths
from snnjax.tasks.detection import PAPER, SYNTHETIC
from snnjax.tasks.detection.config import AugmentConfig, DetectionConfig, DetectorConfig
from snnjax.tasks.detection.loss import LossConfig
from snnjax.tasks.detection.optimizer import SGDConfig


def _config(*argv: str) -> DetectionConfig:
    return flags.parse(voc.EXPERIMENT, list(argv))[0]


def test_defaults_are_the_papers_voc_setting():
    c = _config()
    assert (c.model.mode, c.model.sew, c.model.dtype) == ("snn", "add", "float32")
    assert c.model.spiking == SpikingConfig(
        T=4,
        encoding="phase",
        neuron="learnable",
        learnable_threshold=True,
        learnable_conv=True,
        surrogate_gradient=True,
        surrogate="sigmoid",
        bn_scale=2.0,
    )
    assert c.model == DetectorConfig()
    assert (c.data.dataset, c.data.img_size, c.loop.epochs, c.loop.batch_size, c.loop.seed) == ("voc", 320, 300, 24, 35)
    assert c.optim == SGDConfig()  # YOLOv5 v7.0 scratch-low: lr 0.01, lrf 0.01, momentum 0.937, ...
    assert (c.augment, c.loss) == (AugmentConfig(), LossConfig()) and replace_paths(c, {"loop.workdir": None}) == PAPER
    assert (c.optim.ema_decay, c.optim.clip_norm, c.optim.nominal_batch_size) == (0.9999, 10.0, 64)
    assert c.loop.workdir == os.path.join("runs", "voc", "voc_320_phase+lt+lc+sg_T4_learnable_bn2_add_s35")


def test_flags_reach_the_config():
    c = _config(
        "--mode=ann",
        "--encoding=ttfs",
        "--no-lt",
        "--no-sg",
        "--lc_channels=3",
        "--neuron=lif",
        "--sew=iand",
        "--T=2",
        "--dtype=bfloat16",
        "--img_size=416",
        "--lr=0.02",
        "--ema_decay=none",
        "--hsv_gains",
        "0",
        "0.5",
        "0.25",
        "--balance",
        "4",
        "1",
        "--label_smoothing=0.1",
        "--nominal_batch_size=32",
        "--eval_every=5",
        "--workdir=/tmp/x",
        "--eval_only",
    )
    assert (c.model.mode, c.model.sew, c.model.dtype) == ("ann", "iand", "bfloat16")
    assert c.model.spiking == SpikingConfig(
        T=2,
        encoding="ttfs",
        learnable_threshold=False,
        surrogate_gradient=False,
        lc_channels=3,
        neuron="lif",
        bn_scale=2.0,
    )
    assert (c.data.img_size, c.optim.lr, c.optim.ema_decay, c.optim.nominal_batch_size) == (416, 0.02, None, 32)
    assert (c.loop.eval_every, c.loop.workdir, c.loop.eval_only) == (5, "/tmp/x", True)
    assert c.augment.hsv_gains == (0.0, 0.5, 0.25) and (c.loss.balance, c.loss.label_smoothing) == ((4.0, 1.0), 0.1)


def test_synthetic_preset_fills_only_flags_not_given():
    c, applied = flags.parse(voc.EXPERIMENT, ["--dataset=synthetic", "--epochs=5", "--T=4"])
    assert "epochs" not in applied and "T" not in applied
    assert (c.loop.epochs, c.model.spiking.T, c.data.img_size) == (5, 4, SYNTHETIC.data.img_size)
    assert applied["lr"] == SYNTHETIC.optim.lr
    assert flags.parse(voc.EXPERIMENT, ["--dataset=voc"])[1] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--encoding=spiky"], "--encoding: invalid choice: 'spiky'"),
        (["--dataset=coco"], "--dataset: invalid choice: 'coco'"),
        (["--sew=or"], "--sew: invalid choice: 'or'"),
        (["--T=0"], "--T: got 0; accepted: an int >= 1"),
        (["--img_size=300"], "--img_size: got 300; accepted: a positive multiple of 32"),
        (["--encoding=direct", "--no-lc"], "--lc: got False; accepted: True with encoding='direct'"),
        (["--momentum=1.2"], "--momentum: got 1.2; accepted: a finite number in [0, 1)"),
        (["--lr=0"], "--lr: got 0.0; accepted: a finite number > 0"),
        (["--lr=inf"], "--lr: got inf; accepted: a finite number > 0"),
        (["--clip_norm=-1"], "--clip_norm: got -1.0; accepted: none (no clipping) or a finite number > 0"),
        (["--bn_scale=0"], "--bn_scale: got 0.0; accepted: a finite number > 0"),
        (["--synthetic_classes=99"], "--synthetic_classes: got 99; accepted: an int in [1, 24]"),
        (["--translate=0.7"], "--translate: got 0.7; accepted: a finite number in [0, 0.5]"),
        (["--hsv_gains", "0", "-1", "0"], "--hsv_gains: got (0.0, -1.0, 0.0); accepted: 3 values, each a finite"),
        (["--anchor_t=1"], "--anchor_t: got 1.0; accepted: a finite number > 1"),
        (["--init_from=/no/such/ckpt"], "--init_from: got '/no/such/ckpt'; accepted: none (fresh variables) or an"),
    ],
)
def test_bad_flags_fail_fast_with_a_one_line_error(argv, message, capsys, monkeypatch):
    monkeypatch.setattr(flags, "run", lambda task: pytest.fail("ran with a bad flag"))
    with pytest.raises(SystemExit) as exit_info:
        voc.main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("voc.py: error: argument " + message), error


def test_eval_only_without_checkpoints_names_the_problem(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        voc.main(
            [
                "--dataset=synthetic",
                "--synthetic_train=16",
                "--synthetic_test=8",
                "--eval_only",
                f"--workdir={tmp_path}",
                "--no-progress",
            ]
        )
    assert "eval_only: no checkpoints in workdir" in str(exit_info.value.code)
