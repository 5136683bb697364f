"""experiments/paper.py and report.py end to end at a miniature size: two classification runs (one with its
time-shuffling test) and one detection run of the quick grid, then the report from their folders."""

import json
import os

import numpy as np
import pytest

from snnjax.cli import paper, report
from snnjax.paper import grid, probe, runner

CIFAR_JOB = "cifar10_direct+lc_T4_lif_s35"  # Tables 2/A.1/B, with the shuffling test
PHASE_JOB = "cifar10_phase+lt+lc+sg_T4_learnable_s35"  # Table 2: LT, LC, SG and the learnable LIF
VOC_JOB = "voc_direct+lc_T2_learnable_s35"  # the discussion's T = 2 row
MINIATURE = [
    "--cifar_flags=--synthetic_train=64 --synthetic_test=40 --epochs=2 --batch_size=32 --eval_batch_size=32",
    "--voc_flags=--synthetic_train=8 --synthetic_test=6 --epochs=1 --batch_size=8 --eval_batch_size=8",
]


def paper_args(workdir, *more, jobs=1):
    return ["--workdir", str(workdir), "--table", "all", "--seeds", "35", "--jobs", str(jobs), *MINIATURE, *more]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """The three runs, two at a time (they spend most of their time compiling, each on one core)."""
    workdir = tmp_path_factory.mktemp("paper")
    outcomes = {o.name: o for o in paper.main(paper_args(workdir, "--match", CIFAR_JOB, PHASE_JOB, VOC_JOB, jobs=2))}
    return workdir, outcomes, paper


def test_the_runs_finish_in_their_folders_and_a_rerun_skips_them(quick):
    workdir, outcomes, paper = quick
    assert {name: o.status for name, o in outcomes.items()} == {CIFAR_JOB: "done", PHASE_JOB: "done", VOC_JOB: "done"}
    runs = workdir / "runs"
    assert (runs / CIFAR_JOB / "eval_shuffle_time.json").is_file()
    results = json.loads((runs / VOC_JOB / "results.json").read_text())
    assert results["config"]["model"]["spiking"]["T"] == 2 and results["config"]["data"]["dataset"] == "synthetic"
    assert (
        results["energy_mj"] > 0
        and results["mac_ops"] > 0
        and set(results["pr_curves"]) == {"circle", "square", "triangle"}
    )
    before = (runs / CIFAR_JOB / "results.json").read_text()
    again = paper.main(paper_args(workdir, "--match", CIFAR_JOB, "--shard", "0/1"))  # a shard writes no report
    assert [o.status for o in again] == ["skipped"]
    assert (runs / CIFAR_JOB / "results.json").read_text() == before


def test_the_report_shows_the_runs_found_beside_the_paper_and_marks_the_rest_missing(quick):
    workdir, _, _ = quick
    text = (workdir / "report.md").read_text()
    for table in grid.TABLES.values():
        assert table.title in text
    shuffle_row = next(line for line in text.splitlines() if line.startswith("| Direct (LIF) |"))
    cells = [c.strip() for c in shuffle_row.strip("|").split("|")]
    assert cells[1].endswith("(n=1)") and cells[2] == "95.37" and cells[3].endswith("(n=1)") and cells[4] == "95.01"
    t2_row = next(line for line in text.splitlines() if line.startswith("| Direct, T = 2 |"))
    assert [c.strip() for c in t2_row.strip("|").split("|")][1:] == [
        "missing",
        "94.89",
        t2_row.split("|")[4].strip(),
        "0.365",
    ]
    assert "| TTFS+LT | ✓ |  |  | missing | 83.44 |" in text
    for figure in (
        "curves_B_cifar.png",
        "encoder_spikes.png",
        "thresholds.png",
        "firing_heatmaps.png",
        "pr_curves.png",
        "detections.png",
    ):
        assert (workdir / "figures" / figure).stat().st_size > 1000
        assert f"(figures/{figure})" in text


def test_report_py_rewrites_the_same_report(quick):
    workdir, _, _ = quick
    before = (workdir / "report.md").read_text()
    os.remove(workdir / "report.md")
    report.main([str(workdir)])
    assert (workdir / "report.md").read_text() == before


def test_a_workdir_keeps_its_scale(quick, capsys):
    workdir, _, paper = quick
    with pytest.raises(SystemExit):
        paper.main(paper_args(workdir, "--scale", "full", "--report"))
    assert "argument --scale: got 'full'; accepted: 'quick', the scale of the runs in" in capsys.readouterr().err


def test_thresholds_of_a_trained_encoder(quick):
    workdir, _, _ = quick
    run = probe.load_run(str(workdir / "runs" / CIFAR_JOB), "cifar")
    assert probe.thresholds(run) is None  # direct encoding has no threshold
    images, inputs = probe.test_images(run, 2)
    spikes = probe.encoder_spikes(run, inputs)
    assert images.shape == (2, 8, 8, 3) and spikes.shape[:2] == (4, 2)
    learned, initial = probe.thresholds(probe.load_run(str(workdir / "runs" / PHASE_JOB), "cifar"))
    assert learned.shape == initial.shape == (4, 4)  # [T, C]: C = the LC conv's width, 32 / 8 in QKFormer-2-32
    np.testing.assert_allclose(initial[:, 0], [1.0, 0.5, 0.25, 0.125])  # θ_t = θ₀λ^(t−1), θ₀ = 1, λ = 0.5
    assert not np.allclose(learned, initial)  # LT trained them
    assert set(np.unique(spikes)) <= {0.0, 1.0}


def test_list_and_shard_print_the_commands(capsys, tmp_path):
    paper.main(["--list", "--scale", "full", "--table", "1", "--workdir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 18 and all(line.startswith("python experiments/cifar.py --dataset=cifar10") for line in lines)
    slices = []
    for i in range(4):
        paper.main(["--list", "--scale", "full", "--table", "1", "--workdir", str(tmp_path), "--shard", f"{i}/4"])
        slices += capsys.readouterr().out.splitlines()
    assert sorted(slices) == sorted(lines)
    with pytest.raises(SystemExit):
        paper.main(["--list", "--shard", "4/4"])
    assert "argument --shard: got '4/4'; accepted: i/n with n >= 1 and 0 <= i < n" in capsys.readouterr().err


def test_a_full_scale_run_without_its_dataset_fails_with_a_clear_message(tmp_path, capsys):
    args = ["--scale", "full", "--table", "1", "--seeds", "35", "--match", "cifar10_ttfs_T4_lif_s35"]
    with pytest.raises(SystemExit, match="1 of 1 runs failed: cifar10_ttfs_T4_lif_s35"):
        paper.main([*args, "--workdir", str(tmp_path), "--cifar_flags", f"--data_dir {tmp_path / 'no_data'}"])
    out = capsys.readouterr().out
    assert "cifar10_ttfs_T4_lif_s35: failed in" in out
    assert "cifar.py: error: dataset 'cifar10' is not prepared" in out and "/logs/cifar10_ttfs_T4_lif_s35.log" in out
    assert not (tmp_path / "runs" / "cifar10_ttfs_T4_lif_s35" / "results.json").exists()


def test_quick_runs_keep_each_settings_seeds_together_and_compile_faster(monkeypatch):
    jobs = grid.jobs([grid.TABLES["1"]], "quick", "w", seeds=(35, 0))
    groups = runner.job_groups(jobs, together=True)
    assert sorted(job.name for group in groups for job in group) == sorted(job.name for job in jobs)
    assert all([job.seed for job in group] == [35, 0] and len({job.setting for job in group}) == 1 for group in groups)
    assert runner.job_groups(jobs, together=False) == [[job] for job in jobs]
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    runner.compile_faster()
    runner.compile_faster()
    assert os.environ["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=2 {runner.FAST_COMPILE}"
