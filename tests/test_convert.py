"""Official QKFormer state_dict <-> Flax variables (docs/qkformer.md §6)."""

import dataclasses
import functools
import importlib.util
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.models.convert import export_official_qkformer, load_official_qkformer, official_names
from snnjax.models.qkformer import QKFormer, qkformer
from snnjax.models.spiking import SpikingConfig

MODEL = QKFormer(embed_dim=32, depth=3, num_classes=10, spiking=SpikingConfig(T=2))


def spec_state_dict(depth: int, dim: int, classes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random tensors under the names and PyTorch shapes listed in docs/qkformer.md §6 (E1 = D/4, E2 = D/2, E3 = D)."""
    shapes = {}

    def conv_bn(prefix: str, weight: tuple, bias: bool = False) -> None:
        shapes[f"{prefix}_conv.weight"] = weight
        if bias:
            shapes[f"{prefix}_conv.bias"] = weight[:1]
        for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            shapes[f"{prefix}_bn.{leaf}"] = () if leaf == "num_batches_tracked" else weight[:1]

    e1 = dim // 4
    conv_bn("patch_embed1.proj", (e1 // 2, 3, 3, 3))
    conv_bn("patch_embed1.proj1", (e1, e1 // 2, 3, 3))
    conv_bn("patch_embed1.proj_res", (e1, e1 // 2, 1, 1))
    for stage, e in ((2, dim // 2), (3, dim)):
        conv_bn(f"patch_embed{stage}.proj3", (e, e // 2, 3, 3))
        conv_bn(f"patch_embed{stage}.proj4", (e, e, 3, 3))
        conv_bn(f"patch_embed{stage}.proj_res", (e, e // 2, 1, 1))
    blocks = [("stage1.0", "tssa", dim // 4, "qk"), ("stage2.0", "tssa", dim // 2, "qk")]
    blocks += [(f"stage3.{i}", "ssa", dim, "qkv") for i in range(depth - 2)]
    for block, attention, c, projections in blocks:
        for name in projections:
            conv_bn(f"{block}.{attention}.{name}", (c, c, 1))
        conv_bn(f"{block}.{attention}.proj", (c, c, 1), bias=True)
        conv_bn(f"{block}.mlp.mlp1", (4 * c, c, 1, 1), bias=True)
        conv_bn(f"{block}.mlp.mlp2", (c, 4 * c, 1, 1), bias=True)
    shapes["head.weight"], shapes["head.bias"] = (classes, dim), (classes,)

    rng = np.random.default_rng(seed)

    def tensor(name: str, shape: tuple) -> np.ndarray:
        if name.endswith("num_batches_tracked"):
            return np.array(7, np.int64)
        if name.endswith("running_var"):
            return rng.uniform(0.5, 1.5, shape).astype(np.float32)
        return rng.standard_normal(shape).astype(np.float32)

    return {name: tensor(name, shape) for name, shape in shapes.items()}


@functools.cache
def tiny_state_dict() -> dict[str, np.ndarray]:
    return spec_state_dict(3, 32, 10)


def test_3_256_has_161_tensors_and_round_trips():
    state = spec_state_dict(3, 256, 10)
    assert len(state) == len(list(official_names(3))) == 161
    exported = export_official_qkformer(load_official_qkformer(state, qkformer("3-256")), qkformer("3-256"))
    assert list(exported) == list(state)


def test_round_trip_is_exact():
    state = tiny_state_dict()
    exported = export_official_qkformer(load_official_qkformer(state, MODEL), MODEL)
    assert list(exported) == list(state)
    for name, value in state.items():
        expected = np.zeros((), np.int64) if name.endswith("num_batches_tracked") else value
        np.testing.assert_array_equal(exported[name], expected, err_msg=name)
        assert exported[name].dtype == expected.dtype and exported[name].shape == expected.shape, name


def test_loaded_variables_have_the_model_structure():
    loaded = load_official_qkformer(tiny_state_dict(), MODEL)
    template = jax.eval_shape(MODEL.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    template = {name: template[name] for name in ("params", "batch_stats")}  # init also sows firing rates
    shapes = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), loaded)
    assert shapes == jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), template)


def test_tensors_land_transposed_in_the_right_leaves():
    state = tiny_state_dict()
    variables = load_official_qkformer(state, MODEL)
    params, stats = variables["params"], variables["batch_stats"]
    conv = state["patch_embed1.proj_conv.weight"]  # (O=4, I=3, kh, kw) -> (kh, kw, I, O)
    assert params["encoder"]["conv"]["kernel"][2, 0, 1, 3] == conv[3, 1, 2, 0]
    conv1d = state["stage1.0.tssa.q_conv.weight"]  # (O, I, 1) -> (1, 1, I, O)
    assert params["stage1_0"]["tssa"]["q"]["conv"]["kernel"][0, 0, 5, 2] == conv1d[2, 5, 0]
    assert params["head"]["kernel"][7, 3] == state["head.weight"][3, 7]
    np.testing.assert_array_equal(
        stats["patch_embed2"]["proj4"]["bn"]["var"], state["patch_embed2.proj4_bn.running_var"]
    )
    np.testing.assert_array_equal(
        params["stage3_0"]["ssa"]["proj"]["bn"]["scale"], state["stage3.0.ssa.proj_bn.weight"]
    )


def numpy_bn(x: np.ndarray, state: dict, prefix: str) -> np.ndarray:
    """Eval-mode BatchNorm over the last axis with PyTorch's tensors."""
    mean, var = state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]
    return (x - mean) / np.sqrt(var + 1e-5) * state[f"{prefix}.weight"] + state[f"{prefix}.bias"]


def test_layer_outputs_match_numpy_from_the_state_dict():
    state = tiny_state_dict()
    variables = load_official_qkformer(state, MODEL)
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)
    apply = jax.jit(
        functools.partial(MODEL.apply, capture_intermediates=True, mutable=["intermediates"]),
        compiler_options={"xla_backend_optimization_level": 0},
    )
    logits, out = apply(variables, x)
    inter = jax.device_get(out["intermediates"])

    # patch_embed1.proj_conv (3×3, padding 1) and proj_bn: the encoder's conv and BN, on the image
    w = state["patch_embed1.proj_conv.weight"]
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = sum(
        np.einsum("bhwi,oi->bhwo", padded[:, ky : ky + 8, kx : kx + 8], w[:, :, ky, kx])
        for ky in range(3)
        for kx in range(3)
    )
    np.testing.assert_allclose(inter["encoder"]["conv"]["__call__"][0], conv, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        inter["encoder"]["bn"]["__call__"][0], numpy_bn(conv, state, "patch_embed1.proj_bn"), rtol=1e-4, atol=1e-4
    )

    # stage1.0.tssa.q_conv (Conv1d over tokens) + q_bn, on the output of patch_embed1
    tokens = inter["patch_embed1"]["__call__"][0]
    assert tokens.max() > 0
    q = np.einsum("tbhwi,oi->tbhwo", tokens, state["stage1.0.tssa.q_conv.weight"][:, :, 0])
    np.testing.assert_allclose(
        inter["stage1_0"]["tssa"]["q"]["__call__"][0], numpy_bn(q, state, "stage1.0.tssa.q_bn"), rtol=1e-4, atol=1e-4
    )

    # head: Linear of the mean over T and tokens
    features = inter["stage3_0"]["__call__"][0].mean(axis=(0, 2, 3))
    np.testing.assert_allclose(logits, features @ state["head.weight"].T + state["head.bias"], rtol=1e-5, atol=1e-5)


def test_errors_list_missing_unexpected_and_mis_shaped_entries_at_once():
    state = dict(tiny_state_dict())
    del state["stage2.0.tssa.k_bn.running_mean"], state["patch_embed3.proj4_conv.weight"]
    state["stage1.0.tssa.v_conv.weight"] = np.zeros((8, 8, 1), np.float32)
    state["head.weight"] = np.zeros((10, 33), np.float32)
    state["patch_embed1.proj_conv.weight"] = np.zeros((4, 3, 1, 1), np.float32)
    with pytest.raises(ValueError) as error:
        load_official_qkformer(state, MODEL)
    message = str(error.value)
    assert message.startswith("state_dict: got {'missing (2)': [")
    assert message.endswith(f"; accepted: the entries of QKFormer-{MODEL.depth}-{MODEL.embed_dim} (10 classes)")
    for text in (
        "missing (2)",
        "stage2.0.tssa.k_bn.running_mean",
        "patch_embed3.proj4_conv.weight",
        "unexpected (1)",
        "stage1.0.tssa.v_conv.weight",
        "mis-shaped (2)",
        "head.weight: expected (10, 32), got (10, 33)",
        "patch_embed1.proj_conv.weight: expected (4, 3, 3, 3), got (4, 3, 1, 1)",
    ):
        assert text in message


def test_accepts_nested_checkpoints_and_module_prefix():
    state = tiny_state_dict()
    expected = load_official_qkformer(state, MODEL)
    prefixed = {f"module.{name}": value for name, value in state.items()}
    for checkpoint in ({"epoch": 3, "state_dict": prefixed}, {"model": state}):
        loaded = load_official_qkformer(checkpoint, MODEL)
        jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, expected)


def test_reads_npz_files(tmp_path):
    path = tmp_path / "qkformer.npz"
    np.savez(path, **tiny_state_dict())
    jax.tree_util.tree_map(
        np.testing.assert_array_equal,
        load_official_qkformer(path, MODEL),
        load_official_qkformer(tiny_state_dict(), MODEL),
    )


class TorchLike:
    """The part of torch.Tensor the loader uses (torch itself is not needed for these tests)."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def detach(self) -> "TorchLike":
        return self

    def cpu(self) -> "TorchLike":
        return self

    def is_floating_point(self) -> bool:
        return self.array.dtype.kind == "f"

    def float(self) -> "TorchLike":
        return TorchLike(self.array.astype(np.float32))

    def numpy(self) -> np.ndarray:
        return self.array


def test_accepts_half_precision_torch_tensors():
    half = {
        name: value.astype(np.float16) if value.dtype == np.float32 else value
        for name, value in tiny_state_dict().items()
    }
    loaded = load_official_qkformer({name: TorchLike(value) for name, value in half.items()}, MODEL)
    expected = load_official_qkformer({name: value.astype(np.float32) for name, value in half.items()}, MODEL)
    assert loaded["params"]["head"]["kernel"].dtype == jnp.float32
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, expected)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_pth_without_torch_says_how_to_convert(tmp_path):
    with pytest.raises(ImportError, match="npz"):
        load_official_qkformer(tmp_path / "checkpoint.pth", MODEL)


@pytest.mark.parametrize(
    "kwargs",
    [dict(encoding="rate"), dict(encoding="rate", learnable_conv=False), dict(neuron="learnable"), dict(lc_channels=3)],
)
def test_only_the_official_configuration_maps(kwargs):
    model = MODEL.clone(spiking=dataclasses.replace(MODEL.spiking, **kwargs))
    official = "{'encoding': 'direct', 'learnable_conv': True, 'neuron': 'lif', 'lc_channels': None}"
    match = r"^model\.spiking: got \{'encoding': .*\}; accepted: " + re.escape(official) + r" \(the only .*official"
    with pytest.raises(ValueError, match=match):
        load_official_qkformer(tiny_state_dict(), model)
    with pytest.raises(ValueError, match=match):
        export_official_qkformer(load_official_qkformer(tiny_state_dict(), MODEL), model)
