"""Ultralytics YOLOv5n state_dict <-> Flax variables of ``YOLOv5n(mode="ann")`` (docs/yolov5n.md §7).

Variables are random arrays of the model's shapes (no ``init``: compiling YOLOv5n's init takes far longer
than these tests). Where torch is installed, an independent PyTorch YOLOv5n (``torch_yolov5n.py``) with
random weights must give the imported model's raw Detect outputs.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from snnjax.cli import voc
from snnjax.engine import flags
from snnjax.engine.loop import RUN_ONCE, Trainer
from snnjax.models.yolo import YOLOv5n
from snnjax.models.yolo_weights import export_ultralytics_yolov5n, load_ultralytics_yolov5n, ultralytics_names
from snnjax.tasks import detection

MODEL = YOLOv5n(num_classes=3, mode="ann")


@functools.cache
def template() -> dict:
    return jax.eval_shape(MODEL.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def random_variables(seed: int) -> dict:
    """Float32 arrays of the model's shapes: N(0, 0.1²), BN variances U(0.5, 1.5)."""
    rng = np.random.default_rng(seed)
    flat = traverse_util.flatten_dict(template())
    return traverse_util.unflatten_dict(
        {
            path: np.float32(
                rng.uniform(0.5, 1.5, leaf.shape) if path[-1] == "var" else 0.1 * rng.standard_normal(leaf.shape)
            )
            for path, leaf in flat.items()
        }
    )


@functools.cache
def state_dict() -> dict[str, np.ndarray]:
    return export_ultralytics_yolov5n(random_variables(0), MODEL)


def test_export_then_import_is_exact_and_lists_349_entries_in_state_dict_order():
    variables = random_variables(1)
    exported = export_ultralytics_yolov5n(variables, MODEL)
    assert list(exported) == [name for name, _, _ in ultralytics_names()] and len(exported) == 349
    assert exported["model.0.bn.num_batches_tracked"].dtype == np.int64
    loaded = load_ultralytics_yolov5n(exported, MODEL)
    shapes = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), loaded)
    assert shapes == jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), template())
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, variables)
    again = export_ultralytics_yolov5n(loaded, MODEL)
    for name, value in exported.items():
        np.testing.assert_array_equal(again[name], value, err_msg=name)


def test_tensors_land_transposed_in_the_right_leaves():
    state = state_dict()
    variables = load_ultralytics_yolov5n(state, MODEL)
    params, stats = variables["params"], variables["batch_stats"]
    stem = state["model.0.conv.weight"]  # (O=16, I=3, 6, 6) -> (6, 6, 3, 16)
    assert stem.shape == (16, 3, 6, 6) and params["model_0"]["conv"]["kernel"][5, 1, 2, 9] == stem[9, 2, 5, 1]
    conv = state["model.4.m.1.cv2.conv.weight"]  # (32, 32, 3, 3)
    assert params["model_4"]["m_1"]["cv2"]["conv"]["kernel"][0, 2, 17, 30] == conv[30, 17, 0, 2]
    np.testing.assert_array_equal(stats["model_9"]["cv2"]["bn"]["var"], state["model.9.cv2.bn.running_var"])
    np.testing.assert_array_equal(stats["model_13"]["cv3"]["bn"]["mean"], state["model.13.cv3.bn.running_mean"])
    np.testing.assert_array_equal(params["model_21"]["bn"]["scale"], state["model.21.bn.weight"])
    detect = state["model.24.m.2.weight"]  # (3·(5 + 3), 256, 1, 1) -> (1, 1, 256, 24)
    assert detect.shape == (24, 256, 1, 1) and params["model_24"]["m_2"]["kernel"][0, 0, 200, 13] == detect[13, 200]
    np.testing.assert_array_equal(params["model_24"]["m_0"]["bias"], state["model.24.m.0.bias"])
    anchors = state["model.24.anchors"]  # pixels / stride
    np.testing.assert_array_equal(anchors[0, 1], [2.0, 3.75])
    np.testing.assert_array_equal(anchors[2, 2], [373 / 32, 326 / 32])


def test_errors_list_missing_unexpected_mis_shaped_and_differing_entries_at_once():
    state = dict(state_dict())
    del state["model.6.m.2.cv1.bn.running_mean"]
    state["model.24.anchor_grid"] = np.zeros((3, 1, 3, 1, 1, 2), np.float32)
    state["model.17.cv3.conv.weight"] = np.zeros((64, 64, 3, 3), np.float32)
    state["model.24.anchors"] = state["model.24.anchors"] * 2
    with pytest.raises(ValueError) as error:
        load_ultralytics_yolov5n(state, MODEL)
    message = str(error.value)
    assert "\n" not in message and message.startswith("state_dict: got {'missing (1)': [")
    assert message.endswith("; accepted: the entries of ultralytics YOLOv5n v7.0 with num_classes=3")
    for text in (
        "'missing (1)': ['model.6.m.2.cv1.bn.running_mean']",
        "'unexpected (1)': ['model.24.anchor_grid']",
        "'mis-shaped (1)': ['model.17.cv3.conv.weight: expected (64, 64, 1, 1), got (64, 64, 3, 3)']",
        "'differing (1)': ['model.24.anchors: expected [[[1.25, 1.625], ",
    ):
        assert text in message


def test_the_number_of_classes_must_match_the_detect_head():
    coco = YOLOv5n(num_classes=80, mode="ann")
    accepted = (
        "accepted: the entries of ultralytics YOLOv5n v7.0 with num_classes=80 (this state_dict's Detect head "
        "has 3 classes: COCO weights 80, VOC 20)"
    )
    with pytest.raises(ValueError, match=re.escape(accepted) + "$") as error:
        load_ultralytics_yolov5n(state_dict(), coco)
    assert "'mis-shaped (6)'" in str(error.value)
    assert "model.24.m.0.weight: expected (255, 64, 1, 1), got (24, 64, 1, 1)" in str(error.value)


def test_only_the_ann_maps():
    snn = MODEL.clone(mode="snn")
    match = r"^model\.mode: got 'snn'; accepted: 'ann' \(ultralytics YOLOv5n weights map to the ANN only\)$"
    with pytest.raises(ValueError, match=match):
        load_ultralytics_yolov5n(state_dict(), snn)
    with pytest.raises(ValueError, match=match):
        export_ultralytics_yolov5n(random_variables(0), snn)


def voc_flags(workdir, init_from: str, mode: str) -> list[str]:
    return [
        "--dataset=synthetic",
        f"--mode={mode}",
        "--img_size=32",
        "--synthetic_train=2",
        "--synthetic_test=2",
        "--synthetic_classes=3",
        "--batch_size=2",
        "--eval_batch_size=2",
        f"--workdir={workdir}",
        f"--init_from={init_from}",
        "--eval_only",
    ]


def test_init_from_npz_loads_for_the_ann_and_is_refused_for_the_snn(tmp_path):
    """``--init_from x.npz --eval_only`` as the engine dispatches it (a file goes to the task's
    ``load_variables``); evaluating takes ~9 s of compilation on 2 CPU cores, so the test stops there."""
    path = str(tmp_path / "yolov5n.npz")
    np.savez(path, **state_dict())
    ann = detection.setup(flags.parse(voc.EXPERIMENT, voc_flags(tmp_path / "ann", path, "ann"))[0])
    variables = Trainer(ann).load_variables(path)
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables, random_variables(0))
    snn = detection.setup(flags.parse(voc.EXPERIMENT, voc_flags(tmp_path / "snn", path, "snn"))[0])
    with pytest.raises(ValueError, match=r"^init_from: got '.*yolov5n\.npz'; accepted: an orbax .*--mode=ann$"):
        Trainer(snn).load_variables(path)


@pytest.fixture(scope="module")
def torch_reference():
    """torch and the independent PyTorch YOLOv5n (``torch_yolov5n.py``); skips where torch is missing."""
    torch = pytest.importorskip("torch")
    import torch_yolov5n

    return torch, torch_yolov5n


def test_raw_outputs_match_an_independent_pytorch_yolov5n(torch_reference):
    torch, reference = torch_reference
    net = reference.randomize(reference.YOLOv5n(num_classes=3), seed=0)
    state = net.state_dict()
    variables = load_ultralytics_yolov5n(state, MODEL)
    assert list(export_ultralytics_yolov5n(variables, MODEL)) == list(state)
    image = np.random.default_rng(2).uniform(0.0, 1.0, (2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        expected = [level.numpy() for level in net(torch.from_numpy(image.transpose(0, 3, 1, 2)))]
    raw = jax.jit(MODEL.apply, compiler_options=RUN_ONCE)(variables, image)
    for level, (ours, theirs) in enumerate(zip(raw, expected)):
        # theirs (B, 3, ny, nx, 5 + nc), ours (B, ny, nx, 3, 5 + nc)
        assert np.abs(theirs).max() > 0.5
        np.testing.assert_allclose(ours, theirs.transpose(0, 2, 3, 1, 4), rtol=1e-4, atol=1e-4, err_msg=str(level))


def test_reads_a_plain_pt_and_refuses_a_pickled_model_with_the_line_that_converts_it(torch_reference, tmp_path):
    torch, reference = torch_reference
    net = reference.randomize(reference.YOLOv5n(num_classes=3), seed=1)
    plain, pickled, converted = (str(tmp_path / name) for name in ("sd.pt", "yolov5n.pt", "yolov5n_sd.pt"))
    torch.save(net.state_dict(), plain)
    expected = load_ultralytics_yolov5n(net.state_dict(), MODEL)
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_ultralytics_yolov5n(plain, MODEL), expected)
    torch.save({"epoch": -1, "model": net.half()}, pickled)  # how ultralytics stores yolov5n.pt
    command = "torch.save(torch.load('yolov5n.pt', weights_only=False)['model'].float().state_dict(), 'yolov5n_sd.pt')"
    with pytest.raises(ValueError, match=r"^state_dict_or_path: got '.*yolov5n\.pt'; accepted: a state_dict ") as error:
        load_ultralytics_yolov5n(pickled, MODEL)
    assert "\n" not in str(error.value) and command in str(error.value)
    torch.save(torch.load(pickled, weights_only=False)["model"].float().state_dict(), converted)
    halved = jax.tree_util.tree_map(lambda a: np.float32(np.float16(a)), expected)
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_ultralytics_yolov5n(converted, MODEL), halved)
