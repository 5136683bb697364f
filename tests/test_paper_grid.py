"""The paper's grid: its runs, shards, commands, and the tables the report fills from run folders."""

import json
import os

import pytest

from snnjax.checks import InvalidValue
from snnjax.cli import cifar, voc
from snnjax.paper import grid, report


def test_every_table_names_the_papers_numbers_in_its_cells():
    t1, t2, a1 = grid.TABLES["1"], grid.TABLES["2"], grid.TABLES["A1"]
    assert [c.paper for c in t1.cells] == [83.22, 83.44, 94.32, 95.23, 86.67, 87.77]
    phase = dict(t2.rows)["Phase+Conv"]
    assert [c.paper for c in phase] == [95.64, 78.56, 0.467]
    assert [c.setting.dataset for c in phase] == ["cifar10", "cifar100", "voc"]
    assert {c.setting.neuron for c in t2.cells} == {"learnable"}
    assert {c.setting.neuron for c in a1.cells if c.setting.encoding} == {"lif"}
    assert dict(a1.rows)["ANN YOLOv5n"][2].paper == 0.668
    shuffled = grid.TABLES["B"].cells[1]
    assert (shuffled.paper, shuffled.source) == (95.01, grid.SHUFFLED)


def test_shared_settings_run_once_and_every_setting_at_every_seed():
    jobs = grid.jobs(grid.tables("all"), "quick", "w")
    names = [j.name for j in jobs]
    assert len(names) == len(set(names)) == 34 * 3
    # Table 1's last row is Table A.1's TTFS cell: one run folder.
    assert grid.TABLES["1"].cells[3].setting == dict(grid.TABLES["A1"].rows)["TTFS+Conv"][0].setting
    assert [j.seed for j in jobs[:34]] == [35] * 34  # every setting at the first seed first


def test_shards_cover_the_grid_exactly_once():
    jobs = grid.jobs(grid.tables("all"), "full", "w")
    slices = [grid.shard(jobs, i, 7) for i in range(7)]
    assert sorted(j.name for s in slices for j in s) == sorted(j.name for j in jobs)
    assert max(map(len, slices)) - min(map(len, slices)) <= 1
    with pytest.raises(InvalidValue, match="shard"):
        grid.shard(jobs, 7, 7)


def test_commands_are_the_scripts_flags_and_the_shuffle_test_follows_its_run():
    (job,) = [j for j in grid.jobs(grid.tables("B"), "full", "w", seeds=[0])]
    assert job.command().startswith("python experiments/cifar.py --dataset=cifar10 --encoding=direct --no-lt --lc")
    assert "--seed=0 --workdir=w/runs/cifar10_direct+lc_T4_lif_s0 && python experiments/cifar.py --resume" in (
        job.command()
    )
    assert job.outputs == ("eval_shuffle_time.json", "results.json")
    quick = grid.jobs(grid.tables("2"), "quick", "w", seeds=[35], extra={"voc": ["--eval_every=2"]})
    voc = [j for j in quick if j.setting.dataset == "voc"]
    assert all("--dataset=synthetic" in j.argv and j.argv[-1] == "--eval_every=2" for j in voc)
    with pytest.raises(InvalidValue, match="table"):
        grid.tables("3")


def write_results(workdir, setting, seed, **values):
    folder = os.path.join(workdir, "runs", f"{setting.name}_s{seed}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump(values, f)


def test_the_report_table_shows_mean_std_and_missing_cells(tmp_path):
    table = grid.TABLES["2"]
    rows = dict(table.rows)
    for seed, accuracy in ((35, 0.5), (1000, 0.7)):
        write_results(tmp_path, rows["Direct"][0].setting, seed, accuracy=accuracy, energy_mj=2e-3, mac_ops=10.0)
    write_results(tmp_path, rows["Phase+Conv"][2].setting, 0, map50=0.25)
    text = report.table_markdown(table, str(tmp_path))
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines()[2:]}
    assert "| 60.00 ± 14.14 (n=2) | 95.60 | missing | 77.90 | missing | 0.452 |" in lines["Direct"]
    assert "| missing | 95.64 | missing | 78.56 | 0.250 (n=1) | 0.467 |" in lines["Phase+Conv"]
    assert "0.00" not in lines["Rate+Conv"]
    energy = report.energy_markdown([table], str(tmp_path))
    assert "| cifar10_direct+lc_T4_learnable | 2 | 10 | missing | 2 | missing |" in energy


def test_table_1_marks_each_rows_switches():
    text = report.table_markdown(grid.TABLES["1"], "nowhere")
    assert "| TTFS+LT+LC |  | ✓ | ✓ |" not in text
    assert "| TTFS+LT+LC | ✓ | ✓ |  | missing | 94.32 |" in text


@pytest.mark.parametrize("scale", grid.SCALES)
def test_every_command_of_the_grid_parses_into_the_setting_it_names(scale):
    from snnjax.engine.flags import parse

    scripts = {
        "experiments/cifar.py": cifar.EXPERIMENT,
        "experiments/voc.py": voc.EXPERIMENT,
    }
    for job in grid.jobs(grid.tables("all"), scale, "w"):
        config, _ = parse(scripts[job.script], list(job.argv))
        assert config.loop.seed == job.seed and config.loop.workdir == job.workdir
        s = job.setting
        if s.encoding is None:
            assert config.model.mode == "ann"
            continue
        spiking = config.model.spiking
        assert (spiking.encoding, spiking.neuron, spiking.T, spiking.lc_channels) == (
            s.encoding,
            s.neuron,
            s.T,
            s.lc_channels,
        )
        assert (spiking.learnable_threshold, spiking.learnable_conv, spiking.surrogate_gradient) == (s.lt, s.lc, s.sg)
        dataset = config.data.dataset
        assert dataset == ("synthetic" if scale == "quick" else s.dataset)
