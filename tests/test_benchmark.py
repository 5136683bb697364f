"""The benchmark and init-gradient scripts run on tiny sizes and print their tables (no timing is asserted)."""

import json
import sys
import time

import numpy as np
import pytest


def test_lif_benchmark_prints_a_throughput_table(experiment, capsys):
    experiment("benchmark").main(["lif", "--T", "2", "--N", "64", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "| snnjax | jax" in out and "elements/s" in out


def test_conv_benchmark_times_three_passes_per_layer_and_names_a_bad_layer(experiment, capsys, tmp_path):
    bench = experiment("benchmark")
    path = tmp_path / "conv.json"
    bench.main(["conv", "--layers", "6x5:3-4", "--batch", "2", "--repeats", "1", "--json", str(path)])
    out = capsys.readouterr().out
    assert "| 6x5:3-4 | snnjax |" in out and "| 6x5:3-4 | XLA (lax.conv_general_dilated, default options) |" in out
    rows = json.loads(path.read_text())["rows"]
    assert rows[0]["flops_per_pass"] == 2 * 2 * 6 * 5 * 3 * 4 * 9
    assert all(row[f"{p}_ms"] > 0 for row in rows for p in ("forward", "input_gradient", "weight_gradient"))
    with pytest.raises(SystemExit, match="--layers: got '32:4'; accepted: HxW:C-O"):
        bench.main(["conv", "--layers", "32:4"])


def test_time_it_counts_calls_and_returns_a_median(experiment):
    calls = []
    seconds = experiment("benchmark").time_it(lambda: calls.append(1), repeats=3, warmup=1)
    assert len(calls) == 4 and seconds >= 0
    calls.clear()
    experiment("benchmark").time_it(lambda: (calls.append(1), time.sleep(0.01)), repeats=3, warmup=1, warmup_s=0.05)
    assert len(calls) >= 3 + 5
    calls.clear()
    experiment("benchmark").time_it(lambda: calls.append(1), repeats=3, warmup=1, warmup_s=60)
    assert len(calls) == 3 + 50


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


def fake_spikingjelly(monkeypatch, layout: str, lif_class: type, reset_calls: list) -> None:
    """Installs a tiny ``spikingjelly.<layout>`` (neuron, functional, surrogate) in ``sys.modules``; the other
    layout does not import. The neuron module's LIF is ``lif_class`` under the layout's class name;
    ``reset_net`` appends to ``reset_calls``."""
    import types

    other = {"activation_based": "clock_driven", "clock_driven": "activation_based"}[layout]
    package = types.ModuleType("spikingjelly")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "spikingjelly", package)
    monkeypatch.setitem(sys.modules, f"spikingjelly.{other}", None)
    sub = types.ModuleType(f"spikingjelly.{layout}")
    sub.__path__ = []
    monkeypatch.setitem(sys.modules, sub.__name__, sub)
    names = {"neuron": ("MultiStepLIFNode" if layout == "clock_driven" else "LIFNode", lif_class)}
    names["functional"] = ("reset_net", reset_calls.append)
    names["surrogate"] = ("Sigmoid", object)
    for name, (attribute, value) in names.items():
        module = types.ModuleType(f"{sub.__name__}.{name}")
        setattr(module, attribute, value)
        monkeypatch.setitem(sys.modules, module.__name__, module)


class RecordingLIF:
    def __init__(self, tau=2.0, detach_reset=False, backend="torch", **kwargs):
        self.kwargs = {"tau": tau, "detach_reset": detach_reset, "backend": backend, **kwargs}


@pytest.mark.parametrize("layout", ["activation_based", "clock_driven"])
def test_spikingjelly_layout_chooser_builds_multi_step_lif_in_either_layout(experiment, monkeypatch, layout):
    fake_spikingjelly(monkeypatch, layout, RecordingLIF, [])
    sj = experiment("benchmark").find_spikingjelly()
    assert sj.layout == f"spikingjelly.{layout}"
    node = sj.multi_step("LIF", "torch")(tau=2.0, detach_reset=True, backend="cupy")
    expected = {"tau": 2.0, "detach_reset": True, "backend": "torch"}
    assert node.kwargs == (expected if layout == "clock_driven" else {**expected, "step_mode": "m"})
    assert f"spikingjelly.{layout}, backend=torch" in sj.describe("torch")


def test_missing_spikingjelly_is_reported(experiment, monkeypatch, capsys):
    for layout in ("activation_based", "clock_driven"):
        monkeypatch.setitem(sys.modules, f"spikingjelly.{layout}", None)
    bench = experiment("benchmark")
    assert bench.find_spikingjelly() is None
    bench.main(["lif", "--T", "2", "--N", "64", "--repeats", "1"])
    assert "SpikingJelly is not installed (neither spikingjelly.activation_based nor" in capsys.readouterr().out


def test_lif_json_reports_first_call_apart_and_xla_cost(experiment, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "spikingjelly.activation_based", None)
    monkeypatch.setitem(sys.modules, "spikingjelly.clock_driven", None)
    path = tmp_path / "lif.json"
    experiment("benchmark").main(["lif", "--T", "2", "--N", "64", "--repeats", "1", "--json", str(path)])
    (row,) = json.loads(path.read_text())["rows"]
    assert row["implementation"] == "snnjax" and row["pass_first_call_s"] > 0 and row["pass_step_ms"] > 0
    assert row["pass_flops"] > 0 and row["pass_bytes_accessed"] > 0 and row["pass_flop_share"] is None


# A stand-in for the official QKFormer cifar10/model.py: the same imports of the neuron, the same factory
# name and keyword arguments, input [B, 3, H, W] repeated over T inside the model.
STAND_IN_MODEL = """
import torch
import torch.nn as nn
from spikingjelly.clock_driven.neuron import MultiStepLIFNode, MultiStepParametricLIFNode


class Net(nn.Module):
    def __init__(self, *, img_size_h, img_size_w, patch_size, embed_dims, num_heads, mlp_ratios, in_channels,
                 num_classes, qkv_bias, depths, sr_ratios, T, drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        self.T = T
        self.conv = nn.Conv2d(in_channels, embed_dims, 3, padding=1)
        self.lif = MultiStepLIFNode(tau=2.0, detach_reset=True, backend="cupy")
        self.head = nn.Linear(embed_dims, num_classes)

    def forward(self, x):
        x = x.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)
        x = self.lif(self.conv(x.flatten(0, 1)).mean((2, 3)).reshape(self.T, x.shape[1], -1))
        return self.head(x.mean(0))


def QKFormer(pretrained=False, **kwargs):
    return Net(**kwargs)
"""


def with_tiny_qkformer_steps(bench, monkeypatch):
    """``bench`` (the benchmark module) with a tiny jitted step standing in for QKFormer's train and eval."""
    import jax

    square = jax.jit(lambda x: x * x)
    x = jax.numpy.ones(4)
    step = bench.Step(lambda: jax.block_until_ready(square(x)), lambda: square.lower(x))
    monkeypatch.setattr(bench, "qkformer_steps", lambda *args: bench.StepPair(step, step))
    return bench


def test_official_model_is_imported_built_and_timed_beside_ours(experiment, monkeypatch, tmp_path, capsys):
    """Our side is a tiny jitted step here (the real one is timed above); the reference side runs the
    harness's whole import, build and train/eval path on the stand-in."""
    torch = pytest.importorskip("torch")

    class LIF(torch.nn.Module):
        def __init__(self, tau=2.0, detach_reset=False, backend="torch", step_mode="s"):
            super().__init__()
            built.append({"backend": backend, "step_mode": step_mode})

        def forward(self, x):
            seen_T.append(x.shape[0])
            return torch.sigmoid(x)

    built, seen_T, resets = [], [], []
    fake_spikingjelly(monkeypatch, "activation_based", LIF, resets)
    bench = with_tiny_qkformer_steps(experiment("benchmark"), monkeypatch)
    model = tmp_path / "model.py"
    model.write_text(STAND_IN_MODEL)
    path = tmp_path / "rows.json"
    bench.main(
        ["qkformer", "--models", "2-32", "--batch_sizes", "2", "--dtypes", "float32", "--steps", "1", "--T", "3"]
        + ["--official_model", str(model), "--json", str(path)]
    )
    out = capsys.readouterr().out
    assert built == [{"backend": "torch", "step_mode": "m"}] and set(seen_T) == {3} and len(resets) >= 4
    assert sys.modules.get("spikingjelly.clock_driven") is None  # the stand-in is gone
    ours, official = json.loads(path.read_text())["rows"]
    assert ours["implementation"].startswith("snnjax") and official["implementation"].startswith("official QKFormer")
    assert official["train_first_call_s"] > 0 and official["eval_per_s"] > 0 and official["train_flops"] is None
    assert "spikingjelly.activation_based, backend=torch" in official["implementation"]
    assert "2-32, batch 2, float32: train" in out


def test_compare_prints_one_summary_falling_back_to_the_stored_figures(experiment, monkeypatch, tmp_path, capsys):
    """Without SpikingJelly or the official model the summary names the stored H200 figures as its reference
    (our side is a tiny jitted step; the real QKFormer steps are timed above)."""

    for layout in ("activation_based", "clock_driven"):
        monkeypatch.setitem(sys.modules, f"spikingjelly.{layout}", None)
    bench = with_tiny_qkformer_steps(experiment("benchmark"), monkeypatch)
    path = tmp_path / "summary.json"
    sizes = ["--configs", "3-256:64", "--N", "64", "--encodings", "ttfs", "--steps", "1", "--repeats", "1"]
    bench.main(["compare", *sizes, "--json", str(path)])
    out = capsys.readouterr().out
    assert "| LIF forward + backward, T=4 × 64, float32" in out and "1.64 ms (stored H200 figure" in out
    lif, ttfs, train, evaluation = json.loads(path.read_text())["rows"]
    assert ttfs["measurement"].startswith("ttfs encoder forward + backward, X [64, 32, 32, 32], T=4, bfloat16")
    assert ttfs["reference"] == "n/a (SpikingJelly not installed)" and ttfs["speed"] == "n/a"
    assert train["reference"] == "1807 img/s (stored H200)" and evaluation["reference"] == "4254 img/s (stored H200)"
    assert train["speed"].endswith("×") and "vs 4.4 GiB" in train["snnjax"]
    with pytest.raises(SystemExit, match="--configs: got '3-256'; accepted: MODEL:BATCH"):
        bench.main(["compare", "--configs", "3-256"])


def test_official_model_flag_errors_name_the_flag(experiment, tmp_path, capsys):
    with pytest.raises(SystemExit):
        experiment("benchmark").parse_args(["qkformer", "--official_model", str(tmp_path / "missing.py")])
    assert "argument --official_model: got" in capsys.readouterr().err


def test_encoder_benchmark_times_every_encoding_without_a_reference(experiment, monkeypatch, tmp_path, capsys):
    for layout in ("activation_based", "clock_driven"):
        monkeypatch.setitem(sys.modules, f"spikingjelly.{layout}", None)
    path = tmp_path / "encoder.json"
    size = ["--T", "3", "--batch", "2", "--size", "2", "--channels", "2", "--repeats", "1"]
    experiment("benchmark").main(["encoder", *size, "--json", str(path)])
    out = capsys.readouterr().out
    assert "SpikingJelly is not installed" in out and "must move 512 B" in out
    rows = json.loads(path.read_text())["rows"]
    assert [row["encoding"] for row in rows] == ["direct", "rate", "poisson", "phase", "ttfs"]
    assert all(row["pass_per_s"] > 0 and row["pass_bytes_accessed"] > 0 for row in rows)
    assert rows[0]["effective_bytes_per_s"] == pytest.approx(8 * 16 * 4 / rows[0]["pass_step_s"])


def test_encoder_reference_matches_snnjax_spikes_and_gradients(experiment, monkeypatch, capsys):
    """The PyTorch reference computes what snnjax's encoders compute, with SpikingJelly's surrogate (a
    stand-in here: Heaviside forward, sigmoid-slope backward, α = 4)."""
    torch = pytest.importorskip("torch")
    import jax

    class Heaviside(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x >= 0).to(x)

        @staticmethod
        def backward(ctx, g):
            s = torch.sigmoid(4.0 * ctx.saved_tensors[0])
            return g * 4.0 * s * (1 - s)

    class Sigmoid:
        def __init__(self, alpha):
            assert alpha == 4.0

        def __call__(self, x):
            return Heaviside.apply(x)

    fake_spikingjelly(monkeypatch, "activation_based", RecordingLIF, [])
    monkeypatch.setattr(sys.modules["spikingjelly.activation_based.surrogate"], "Sigmoid", Sigmoid)
    bench = experiment("benchmark")
    inputs = bench.encoder_inputs(4, (3, 2, 2, 2))
    for kind in ("direct", "rate", "phase", "ttfs"):
        leaves = [torch.from_numpy(a).requires_grad_() for a in (inputs[0], *inputs[2:])]
        spikes = bench.torch_encode(torch, kind, *leaves, 4, Sigmoid(4.0))
        spikes.backward(torch.from_numpy(inputs[1]))
        f = lambda x, th, la, kind=kind: bench.encode(kind, x, 4, threshold=th, threshold_decay=la)
        ours, vjp = jax.vjp(f, inputs[0], *inputs[2:])
        np.testing.assert_array_equal(spikes.detach().numpy(), ours)
        for got, leaf in zip(vjp(inputs[1]), leaves):
            want = np.zeros_like(got) if leaf.grad is None else leaf.grad.numpy()
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    bench.main(["encoder", "--encodings", "ttfs", "--T", "2", "--batch", "1", "--size", "2", "--channels", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ttfs |")]
    assert len(rows) == 2 and "loop over t, spikingjelly.activation_based.surrogate.Sigmoid" in rows[1]
    assert rows[1].rstrip(" |").endswith("×")
