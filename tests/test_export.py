"""snnjax-export: a trained run's weights out as the reference state_dicts, and back in unchanged."""

import jax
import numpy as np
import pytest

from snnjax.cli import export
from snnjax.models.convert import load_official_qkformer
from snnjax.models.yolo_weights import load_ultralytics_yolov5n
from snnjax.trained import load_trained

IMPORTERS = {"cifar": load_official_qkformer, "voc": load_ultralytics_yolov5n}


def assert_same_variables(got, want):
    got_leaves, got_tree = jax.tree_util.tree_flatten(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for x, y in zip(got_leaves, want_leaves):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("run", ["cifar", "voc"])
def test_npz_round_trip_gives_the_runs_evaluation_variables(trained_runs, tmp_path, run):
    out = export.main(["--workdir", trained_runs[run], "--out", str(tmp_path / "w.npz")])
    trained = load_trained(trained_runs[run])
    imported = IMPORTERS[run](out, trained.model)
    assert_same_variables(imported, {k: trained.variables[k] for k in ("params", "batch_stats")})


def test_pth_holds_torch_tensors_the_importer_reads(trained_runs, tmp_path):
    torch = pytest.importorskip("torch")
    out = export.main(["--workdir", trained_runs["cifar"], "--out", str(tmp_path / "qkformer.pth")])
    state = torch.load(out, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["head.weight"].shape == (10, 32)  # PyTorch's (out, in)
    trained = load_trained(trained_runs["cifar"])
    np.testing.assert_array_equal(
        state["head.weight"].numpy(), np.asarray(trained.variables["params"]["head"]["kernel"]).T
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--out", "w.onnx"], "argument --out: got 'w.onnx'; accepted: a file name ending in .pth, .pt, .npz"),
        (["--out", "exists.npz"], "accepted: a file that does not exist yet (or --overwrite)"),
        (["--workdir", "missing", "--out", "w.npz"], "workdir: got 'missing'"),
    ],
)
def test_bad_input_is_one_line(trained_runs, tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists.npz").write_bytes(b"kept")
    with pytest.raises(SystemExit) as stop:
        export.main(["--workdir", trained_runs["cifar"], *flags])
    error = str(stop.value.code) if isinstance(stop.value.code, str) else capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error
    assert (tmp_path / "exists.npz").read_bytes() == b"kept"
