"""The benchmark and init-gradient scripts run on tiny sizes and print their tables (no timing is asserted)."""

import numpy as np
import pytest


def test_lif_benchmark_prints_a_throughput_table(experiment, capsys):
    experiment("benchmark").main(["lif", "--T", "2", "--N", "64", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "| snnjax | jax" in out and "elements/s" in out


def test_time_it_counts_calls_and_returns_a_median(experiment):
    calls = []
    seconds = experiment("benchmark").time_it(lambda: calls.append(1), repeats=3, warmup=1)
    assert len(calls) == 4 and seconds >= 0


def test_bad_sizes_are_rejected(experiment):
    with pytest.raises(SystemExit):
        experiment("benchmark").parse_args(["lif", "--N", "0"])


def test_qkformer_benchmark_times_the_real_train_and_eval_steps(experiment, capsys):
    experiment("benchmark").main(
        ["qkformer", "--models", "2-32", "--batch_sizes", "2", "--dtypes", "float32", "--steps", "1"]
    )
    row = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 2-32 |")]
    assert len(row) == 1 and row[0].split("|")[3].strip() == "float32"


def test_yolo_benchmark_times_the_detection_train_step_and_nms(experiment, capsys):
    """The ANN compiles faster than the spiking net; the timed steps are the same code either way."""
    experiment("benchmark").main(
        ["yolo", "--img_sizes", "32", "--batch_sizes", "2", "--dtypes", "float32", "--steps", "1", "--mode", "ann"]
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 32 | 2 |")]
    assert len(rows) == 1 and float(rows[0].split("|")[4]) > 0
    assert "host pipeline at 32 px:" in out and "training img/s" in out


def test_init_gradients_compares_bn_scales_with_the_ann(experiment, capsys):
    rows = experiment("init_gradients").main(
        ["--img_size", "32", "--T", "1", "--batch_size", "2", "--bn_scales", "2", "--seeds", "1"]
    )
    assert [name for name, _ in rows] == ["snn γ=2", "ann"]
    spiking, ann = rows[0][1], rows[1][1]
    assert 0 < spiking["rate"] < 1 and np.isnan(ann["rate"])
    assert all(np.isfinite(row["norm"]) and row["norm"] > 0 for _, row in rows)
    assert "| snn γ=2 |" in capsys.readouterr().out


def test_init_gradients_rejects_bad_sizes(experiment):
    with pytest.raises(SystemExit):
        experiment("init_gradients").main(["--img_size", "40"])
