"""QKFormer (docs/qkformer.md): shapes, parameter counts, spikes, the SSA scan switch, dtypes, gradients."""

import dataclasses
import functools
import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import traverse_util

from snnjax.models.qkformer import MergedTimeBatchLIF, QKFormer, SpikingSelfAttention, qkformer
from snnjax.models.spiking import SpikingConfig, Units
from snnjax.neurons import LIF

T, B = 2, 2
# Compiling dominates these tests: the "rbg" PRNG and XLA's lowest CPU optimisation level compile faster.
RNGS = {"params": jax.random.key(0, impl="rbg"), "encoding": jax.random.key(1)}
jit = functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})


SPIKING_FIELDS = {field.name for field in dataclasses.fields(SpikingConfig)}


def tiny(**kwargs) -> QKFormer:
    """QKFormer-3-32 (8 heads), shape-checked on 16×16 images without compiling; ``kwargs`` may mix model
    and ``SpikingConfig`` fields."""
    spiking = SpikingConfig(**{"T": T, **{k: kwargs.pop(k) for k in list(kwargs) if k in SPIKING_FIELDS}})
    return QKFormer(**{"embed_dim": 32, "depth": 3, "num_classes": 10, "spiking": spiking, **kwargs})


def images(batch: int = B, h: int = 16, w: int = 16) -> jax.Array:
    return jax.random.normal(jax.random.key(2), (batch, h, w, 3))


def count(tree) -> int:
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(tree))


def train_apply(model: QKFormer, variables, x):
    """Train-mode logits and the mutated collections (batch stats, firing rates, every module output)."""
    return model.apply(
        variables,
        x,
        train=True,
        mutable=["batch_stats", "firing_rates", "intermediates"],
        capture_intermediates=True,
        rngs={"encoding": jax.random.key(3)},
    )


@pytest.fixture(scope="module")
def model_and_variables():
    """Every kind of parameter (LC conv+BN, learnt thresholds, learnable-LIF k and w) on 32×32 images.

    Stage 3 has 8×8 tokens and heads of 32 channels, as in 3-256, so its SSA is active.
    """
    model = QKFormer(
        embed_dim=64, depth=3, num_heads=2, spiking=SpikingConfig(T=T, encoding="phase", neuron="learnable")
    )
    return model, jit(model.init)(RNGS, images(h=32, w=32))


@pytest.fixture(scope="module")
def train_step(model_and_variables):
    """One jitted train-mode step: logits, the mutated collections and the gradients of a CE loss."""
    model, variables = model_and_variables
    labels = jnp.arange(B)

    def loss(params):
        logits, state = train_apply(model, {**variables, "params": params}, images(h=32, w=32))
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), (logits, state)

    grads, (logits, state) = jit(jax.grad(loss, has_aux=True))(variables["params"])
    return logits, state, grads


COMBOS = [
    (kind, lc, neuron)
    for kind, lc, neuron in itertools.product(
        ("direct", "rate", "phase", "ttfs", "poisson"), (True, False), ("lif", "learnable")
    )
    if kind != "direct" or lc
]


@pytest.mark.parametrize("encoding,learnable_conv,neuron", COMBOS)
def test_logits_shape_for_every_encoding(encoding, learnable_conv, neuron):
    model = tiny(encoding=encoding, learnable_conv=learnable_conv, neuron=neuron)
    logits, _ = jax.eval_shape(lambda: model.init_with_output(RNGS, images(), train=True))
    assert logits.shape == (B, 10) and logits.dtype == jnp.float32


def test_stage_shapes_for_rectangular_images():
    _, state = jax.eval_shape(lambda: tiny().init_with_output(RNGS, images(h=12, w=20), capture_intermediates=True))
    shapes = {name: out["__call__"][0].shape for name, out in state["intermediates"].items() if name != "__call__"}
    assert shapes["encoder"] == (T, B, 12, 20, 4)
    assert shapes["patch_embed1"] == shapes["stage1_0"] == (T, B, 12, 20, 8)
    assert shapes["patch_embed2"] == shapes["stage2_0"] == (T, B, 6, 10, 16)
    assert shapes["patch_embed3"] == shapes["stage3_0"] == (T, B, 3, 5, 32)


@pytest.mark.parametrize(
    "name,classes,expected",
    [("3-256", 10, 2_195_498), ("3-256", 100, 2_218_628), ("4-384", 10, 6_706_234), ("4-384", 100, 6_740_884)],
)
def test_parameter_counts_equal_official(name, classes, expected):
    variables = jax.eval_shape(qkformer(name, num_classes=classes).init, RNGS, jnp.zeros((1, 32, 32, 3)))
    assert count(variables["params"]) == expected


def test_firing_rates_are_sown_for_every_spiking_layer(train_step):
    rates = traverse_util.flatten_dict(train_step[1]["firing_rates"])
    # encoder 1 + patch_embed1 2 + two token blocks 2×6 + patch_embed2/3 2×3 + SSA block 7
    assert len(rates) == 28
    values = np.array([r[0] for r in rates.values()])
    assert np.all((values >= 0) & (values <= 1)) and values.max() > 0


def test_token_attention_mask_is_any_q_spike_in_the_head(train_step):
    for stage in ("stage1_0", "stage2_0"):
        tssa = train_step[1]["intermediates"][stage]["tssa"]
        q, mask = tssa["q_lif"]["__call__"][0], tssa["attn_lif"]["__call__"][0]
        q_count = q.reshape(q.shape[:-1] + (2, -1)).sum(-1)
        np.testing.assert_array_equal(mask, (q_count >= 1).astype(mask.dtype))
        assert 0 < mask.mean() < 1


def test_gradients_are_finite_and_nonzero(train_step):
    grads = traverse_util.flatten_dict(jax.device_get(train_step[2]))
    assert {"threshold", "threshold_decay_logit", "decay", "weight"} <= {path[-1] for path in grads}
    for path, g in grads.items():
        assert np.all(np.isfinite(g)), path
        if path[-2:] == ("conv", "bias"):  # followed by train-mode BN, which removes it: ~0 (docs/qkformer.md §1.5)
            assert np.abs(g).max() <= 1e-3 * np.abs(grads[path[:-1] + ("kernel",)]).max(), path
        elif path[-2:] == ("attn_lif", "decay"):
            # ∂L/∂k_t = ∂L/∂H[t]·V[t-1] needs charge held below threshold. Token attention: the input is a
            # Q-spike count and with w = 1/2 any count >= 1 fires, so V stays 0. SSA: with T = 2 only k_1
            # counts, and the attention scores at t = 0 are still 0 in a model this small.
            assert path[-3] == "ssa" or np.all(g == 0), path
        else:
            assert np.any(g != 0), path


def test_bfloat16_compute_keeps_float32_params_and_logits(model_and_variables):
    model, variables = model_and_variables
    bf16 = model.clone(dtype=jnp.bfloat16)
    params = jax.eval_shape(bf16.init, RNGS, images())["params"]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))
    logits, state = jit(lambda v, x: train_apply(bf16, v, x))(variables, images(h=32, w=32))
    assert logits.dtype == jnp.float32 and np.all(np.isfinite(logits))
    stream = [v["__call__"][0] for k, v in state["intermediates"].items() if k.startswith(("patch_embed", "stage"))]
    assert len(stream) == 6 and all(s.dtype == jnp.bfloat16 for s in stream)


@functools.partial(jit, static_argnames="batch")
def ssa_outputs(batch: int) -> tuple[jax.Array, jax.Array]:
    """An SSA block of 3-256's stage 3 (8×8 tokens, 8 heads of 32) on integer input constant over T = 4.

    Returns the outputs with the official proj_lif scan (over T·B) and with the correct LIF.
    """
    x = jax.random.randint(jax.random.key(4), (1, batch, 8, 8, 256), 0, 3).astype(jnp.float32)
    x = jnp.broadcast_to(x, (4,) + x.shape[1:])
    variables = SpikingSelfAttention(8, Units()).init(RNGS["params"], x)
    return tuple(
        SpikingSelfAttention(8, Units(), official_scan=official).apply(
            variables, x, train=True, mutable=["batch_stats"]
        )[0]
        for official in (True, False)
    )


def test_official_ssa_scan_equals_correct_lif_for_one_sample():
    official, correct = ssa_outputs(1)
    assert 0 < correct.mean() < 1
    np.testing.assert_array_equal(official, correct)


def test_official_ssa_scan_leaks_across_the_batch():
    official, correct = ssa_outputs(2)
    assert np.any(official != correct)


def test_official_ssa_scan_switch_reaches_the_proj_lif():
    def proj_lif_module(official: bool) -> type:
        """The class of the stage-3 SSA's proj_lif, recorded while the model runs (shapes only)."""
        found = []

        def record(next_fun, args, kwargs, context):
            if context.module.name == "proj_lif" and isinstance(context.module.parent, SpikingSelfAttention):
                found.append(type(context.module))
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(record):
            jax.eval_shape(lambda: tiny(official_ssa_scan=official).init(RNGS, images()))
        return found[0]

    assert proj_lif_module(True) is MergedTimeBatchLIF  # one scan over the merged T·B axis
    assert proj_lif_module(False) is LIF


@pytest.mark.parametrize(
    "attr,value",
    [
        ("embed_dim", 48),
        ("embed_dim", 0),
        ("depth", 1),
        ("num_classes", 0),
        ("T", 0),
        ("mlp_ratio", 0.0),
        ("num_heads", 0),
        ("encoding", "delta"),
        ("neuron", "izhikevich"),
        ("lc_channels", 0),
        ("tau", 1.0),
        ("v_reset", "zero"),
        ("surrogate", "nope"),
        ("learnable_conv", "yes"),
        ("dtype", jnp.int32),
        ("official_ssa_scan", 1),
        ("spiking", {"T": 2}),
    ],
)
def test_bad_config_raises_naming_the_attribute(attr, value):
    with pytest.raises(ValueError, match=attr):
        jax.eval_shape(tiny(**{attr: value}).init, RNGS, images())


def test_official_ssa_scan_needs_the_standard_lif():
    with pytest.raises(ValueError, match="official_ssa_scan"):
        jax.eval_shape(tiny(neuron="learnable", official_ssa_scan=True).init, RNGS, images())


def test_direct_encoding_needs_learnable_conv():
    with pytest.raises(ValueError, match="learnable_conv"):
        jax.eval_shape(tiny(learnable_conv=False).init, RNGS, images())


@pytest.mark.parametrize("name", ["3x256", "1-256", "3-100", "3-", "resnet"])
def test_bad_model_name_raises(name):
    with pytest.raises(ValueError, match="model.*L-D"):
        qkformer(name)


def test_factory_parses_depth_and_width():
    model = qkformer("4-384", spiking=SpikingConfig(T=4))
    assert (model.depth, model.embed_dim, model.spiking.T) == (4, 384, 4)
