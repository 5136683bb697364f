"""experiments/voc.py: flags -> config, the synthetic preset, and one-line errors for bad values."""

import os

import pytest
from conftest import load_experiment

from snnjax.models.spiking import SpikingConfig
from snnjax.train.config import DetectionConfig, DetectorConfig, SGDConfig

voc = load_experiment("voc")


def _config(*argv: str) -> DetectionConfig:
    args, _ = voc.parse_args(list(argv))
    voc.validate(args)
    return voc.to_config(args)


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
        "--no-ema",
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
    assert (c.loop.eval_every, c.loop.workdir, c.eval_only) == (5, "/tmp/x", True)


def test_synthetic_preset_fills_only_flags_not_given():
    args, applied = voc.parse_args(["--dataset=synthetic", "--epochs=5", "--T=4"])
    assert "epochs" not in applied and "T" not in applied
    assert (args.epochs, args.T, args.img_size) == (5, 4, voc.SYNTHETIC_PRESET["img_size"])
    assert applied["lr"] == voc.SYNTHETIC_PRESET["lr"]
    assert voc.parse_args(["--dataset=voc"])[1] == {}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--encoding=spiky"], "--encoding: invalid choice: 'spiky'"),
        (["--dataset=coco"], "--dataset: invalid choice: 'coco'"),
        (["--sew=or"], "--sew: invalid choice: 'or'"),
        (["--T=0"], "--T: must be >= 1"),
        (["--img_size=300"], "--img_size: must be a positive multiple of 32"),
        (["--encoding=direct", "--no-lc"], "--lc: the 'direct' encoding needs --lc"),
        (["--momentum=1.2"], "--momentum: must be in [0, 1)"),
        (["--lr=0"], "--lr: must be > 0"),
        (["--clip_norm=-1"], "--clip_norm: must be > 0"),
        (["--bn_scale=0"], "--bn_scale: must be > 0"),
        (["--synthetic_classes=99"], "--synthetic_classes: must be in [1, 24]"),
        (["--init_from=/no/such/ckpt"], "--init_from: no such file or folder"),
    ],
)
def test_bad_flags_fail_fast_with_a_one_line_error(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("snnjax.train.detection_task.run", lambda config: pytest.fail("ran with a bad flag"))
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
