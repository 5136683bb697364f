"""YOLOv5n (docs/yolov5n.md §1) in ANN and spiking mode (§5.5), and the YOLOv5 decoding."""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.models import yolo
from snnjax.models.spiking import SpikingConfig
from snnjax.models.yolo import YOLOv5n

T = 2
SPIKING = SpikingConfig(T=T)
IMAGES = jax.random.uniform(jax.random.PRNGKey(0), (2, 64, 64, 3))
LEVEL_SHAPES = [(2, 8, 8, 3, 25), (2, 4, 4, 3, 25), (2, 2, 2, 3, 25)]


def _key():
    # RngBitGenerator keys compile the ~130 parameter initialisers much faster than threefry.
    return jax.random.key(0, impl="unsafe_rbg")


def _init(model, images=IMAGES):
    rngs = {"params": _key(), "encoding": _key()}
    return jax.jit(functools.partial(model.init, train=False, mutable=["params", "batch_stats"]))(rngs, images)


def _abstract_apply(model, images=IMAGES):
    """Shapes of the outputs and of every variable collection (incl. ``firing_rates``), without compiling."""
    rngs = {"params": _key(), "encoding": _key()}
    return jax.eval_shape(functools.partial(model.init_with_output, mutable=True), rngs, images)


def _count(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


@pytest.fixture(scope="module")
def variables():
    return _init(YOLOv5n(spiking=SPIKING))


@pytest.fixture(scope="module")
def train_step(variables):
    """One train-mode forward+backward: (raw outputs, firing rates, parameter gradients)."""
    model = YOLOv5n(spiking=SPIKING)

    def loss(params):
        outputs, state = model.apply(
            {**variables, "params": params}, IMAGES, train=True, mutable=["batch_stats", "firing_rates"]
        )
        return sum(jnp.mean(jnp.square(o)) for o in outputs), (outputs, state["firing_rates"])

    grads, (outputs, rates) = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
    return outputs, rates, grads


@pytest.mark.parametrize(
    "config",
    [
        dict(mode="ann"),
        *(dict(encoding=kind) for kind in ("direct", "rate", "poisson", "phase", "ttfs")),
        dict(encoding="rate", learnable_conv=False),
        dict(encoding="phase", lc_channels=3, learnable_threshold=False, surrogate_gradient=False),
        dict(neuron="learnable"),
    ],
    ids=str,
)
def test_output_shapes_for_every_encoding_and_mode(config):
    mode = config.pop("mode", "snn")
    outputs, _ = _abstract_apply(YOLOv5n(mode=mode, spiking=SpikingConfig(T=T, **config), sew="iand"))
    assert [o.shape for o in outputs] == LEVEL_SHAPES
    assert all(o.dtype == jnp.float32 for o in outputs)


@pytest.mark.parametrize("mode", ["snn", "ann"])
@pytest.mark.parametrize("num_classes, expected", [(20, 1_790_977), (80, 1_872_157)])
def test_parameter_counts_equal_yolov5n(mode, num_classes, expected):
    _, shapes = _abstract_apply(YOLOv5n(num_classes, mode, SPIKING))
    assert _count(shapes["params"]) == expected
    assert _count(shapes["batch_stats"]) == 9_504


def test_lc_off_adds_only_the_encoder_thresholds_per_input_channel():
    model = YOLOv5n(spiking=SpikingConfig(T=T, encoding="phase", learnable_conv=False))
    _, shapes = _abstract_apply(model)
    assert _count(shapes["params"]) == 1_790_977 + 2 * 3


def test_snn_sows_57_firing_rates_and_ann_none():
    _, state = _abstract_apply(YOLOv5n(spiking=SPIKING))
    assert len(jax.tree.leaves(state["firing_rates"])) == 57
    _, state = _abstract_apply(YOLOv5n(mode="ann", spiking=SPIKING))
    assert not jax.tree.leaves(state.get("firing_rates", {}))


@pytest.mark.parametrize("level, stride, obj_offset", [(0, 8, -6.685), (1, 16, -5.298), (2, 32, -3.912)])
def test_detect_bias_init_adds_yolov5_offsets_to_the_default_init(variables, level, stride, obj_offset):
    bias = np.asarray(variables["params"]["model_24"][f"m_{level}"]["bias"]).reshape(3, 25)
    bound = 1 / math.sqrt(64 * 2**level)
    cls_offset = -3.455
    np.testing.assert_allclose(math.log(8 / (640 / stride) ** 2), obj_offset, atol=1e-3)
    np.testing.assert_allclose(math.log(0.6 / (20 - 0.99999)), cls_offset, atol=1e-3)
    assert np.abs(bias[:, :4]).max() <= bound
    assert np.abs(bias[:, 4] - obj_offset).max() <= bound + 1e-3
    assert np.abs(bias[:, 5:] - cls_offset).max() <= bound + 1e-3
    # The default init is U(±bound): mean 0, std bound/√3; the class biases' mean is shifted by the offset.
    assert abs(bias[:, 5:].mean() - cls_offset) < 4 * bound / math.sqrt(3 * bias[:, 5:].size) + 1e-3


def test_decode_matches_a_hand_computed_cell():
    raw = [jnp.zeros((1, 4, 4, 3, 7)), jnp.zeros((1, 2, 2, 3, 7)), jnp.zeros((1, 1, 1, 3, 7))]
    t = [0.3, -0.7, 0.2, -1.1, 2.0, -0.5, 0.4]
    raw[1] = raw[1].at[0, 1, 0, 2].set(jnp.asarray(t))  # level P4/16, row cy=1, column cx=0, anchor (59, 119)
    boxes = jax.jit(yolo.decode)(raw)
    chex.assert_shape(boxes, (1, 3 * (16 + 4 + 1), 7))
    sig = lambda v: 1 / (1 + math.exp(-v))
    expected = [
        (2 * sig(0.3) - 0.5 + 0) * 16,
        (2 * sig(-0.7) - 0.5 + 1) * 16,
        (2 * sig(0.2)) ** 2 * 59,
        (2 * sig(-1.1)) ** 2 * 119,
        sig(2.0),
        sig(-0.5),
        sig(0.4),
    ]
    np.testing.assert_allclose(boxes[0, 48 + (1 * 2 + 0) * 3 + 2], expected, rtol=1e-6)
    # A zero output sits at the cell centre with the anchor's size: P3 row 3, column 2, anchor (16, 30).
    np.testing.assert_allclose(boxes[0, (3 * 4 + 2) * 3 + 1], [20, 28, 16, 30, 0.5, 0.5, 0.5], rtol=1e-6)


def test_decode_names_levels_that_do_not_match_the_strides_and_anchors():
    raw = [jnp.zeros((1, 4, 4, 3, 7)), jnp.zeros((1, 2, 2, 3, 7))]
    with pytest.raises(ValueError, match=r"^len\(raw_levels\): got 2; accepted: 3, one level per stride$"):
        yolo.decode(raw)
    with pytest.raises(ValueError, match=r"^strides: got \(8, 16\); accepted: 3 strides, one per anchor set$"):
        yolo.decode(raw, strides=(8, 16))


@pytest.mark.parametrize("other", ["and", "iand"])
def test_sew_modes_change_the_backbone_c3_but_not_the_head_c3(other):
    spikes = jax.random.bernoulli(jax.random.PRNGKey(1), 0.3, (T, 2, 8, 8, 32)).astype(jnp.float32)

    @jax.jit
    def run(spikes):
        """C3 outputs with the same parameters for sew = add / other, with and without the shortcut."""
        outputs = {}
        for shortcut in (True, False):
            c3s = {sew: yolo.C3(32, 1, shortcut, yolo.Units(spiking=SPIKING, sew=sew)) for sew in ("add", other)}
            variables = c3s["add"].init(_key(), spikes, mutable=["params", "batch_stats"])
            for sew, c3 in c3s.items():
                outputs[shortcut, sew] = c3.apply(variables, spikes, train=True, mutable=["batch_stats"])[0]
        return outputs

    outputs = run(spikes)
    assert not np.array_equal(outputs[True, "add"], outputs[True, other])
    np.testing.assert_array_equal(outputs[False, "add"], outputs[False, other])


def test_train_outputs_are_finite_raw_levels(train_step):
    outputs, _, _ = train_step
    assert [o.shape for o in outputs] == LEVEL_SHAPES
    assert all(np.all(np.isfinite(o)) for o in outputs)


def test_firing_rates_are_sown_by_all_57_neurons(train_step):
    _, rates, _ = train_step
    rates = np.asarray(jax.tree.leaves(rates))
    assert rates.shape == (57, IMAGES.shape[0])  # one rate per layer and image
    assert np.all((rates >= 0) & (rates <= 1)) and np.all((rates.mean(1) > 0) & (rates.mean(1) < 1))


def test_gradients_are_finite_and_reach_every_parameter(train_step):
    _, _, grads = train_step
    for path, g in jax.tree_util.tree_leaves_with_path(jax.device_get(grads)):
        assert np.all(np.isfinite(g)), path
        assert np.abs(g).max() > 0, path


def test_bf16_compute_with_fp32_params(variables):
    model = YOLOv5n(spiking=SPIKING, dtype=jnp.bfloat16)
    jaxpr = str(jax.make_jaxpr(functools.partial(model.apply, train=False))(variables, IMAGES))
    # 1×1 convs run as matmuls (snnjax.convolution)
    convs = [line for line in jaxpr.splitlines() if "conv_general_dilated[" in line or "dot_general[" in line]
    assert len(convs) == 60 and all("bf16[" in line.split("=")[0] for line in convs)
    outputs = jax.jit(functools.partial(model.apply, train=False))(variables, IMAGES)
    assert all(o.dtype == jnp.float32 and np.all(np.isfinite(o)) for o in outputs)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(mode="cnn"), "mode: got 'cnn'; accepted: 'snn', 'ann'"),
        (dict(sew="or"), "sew: got 'or'; accepted: 'add', 'and', 'iand'"),
        (dict(spiking=dict(encoding="burst")), "encoding: got 'burst'"),
        (dict(spiking=dict(neuron="izhikevich")), "neuron: got 'izhikevich'"),
        (dict(spiking="phase"), "spiking: got 'phase'; accepted: a SpikingConfig"),
        (dict(num_classes=0), "num_classes: got 0"),
        (dict(spiking=dict(lc_channels=0)), "lc_channels: got 0"),
        (dict(dtype=jnp.int8), "dtype: got"),
    ],
)
def test_invalid_config_names_the_attribute(config, message):
    with pytest.raises(ValueError, match=message):
        if isinstance(config.get("spiking"), dict):  # a bad spiking setting fails where the config is built
            config = {**config, "spiking": SpikingConfig(**config["spiking"])}
        _abstract_apply(YOLOv5n(**{"spiking": SPIKING, **config}))


def test_ann_mode_ignores_the_spiking_settings():
    _, ann = _abstract_apply(YOLOv5n(mode="ann", spiking=SpikingConfig(T=7, encoding="poisson"), sew="or"))
    _, reference = _abstract_apply(YOLOv5n(mode="ann"))
    assert jax.tree.map(lambda a: a.shape, ann) == jax.tree.map(lambda a: a.shape, reference)


def test_images_must_be_multiples_of_32():
    with pytest.raises(ValueError, match="images: got"):
        _abstract_apply(YOLOv5n(spiking=SPIKING), jnp.zeros((1, 48, 64, 3)))


@pytest.mark.parametrize("spiking, expected", [(SpikingConfig(bn_scale=2.0), 2.0), (None, 1.0)])
def test_bn_scale_initialises_the_batchnorm_before_every_neuron(spiking, expected):
    variables = yolo.C3(8, 1, True, yolo.Units(spiking=spiking)).init(_key(), jnp.ones((T, 1, 4, 4, 8)))
    scales = [
        leaf for path, leaf in jax.tree_util.tree_flatten_with_path(variables["params"])[0] if path[-1].key == "scale"
    ]
    assert len(scales) == 5 and all(np.all(scale == expected) for scale in scales)  # cv1-3, m_0.cv1-2


def test_upsample_repeats_each_pixel_in_a_two_by_two_block_and_sums_its_gradient():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 5, 6))
    up, vjp = jax.vjp(yolo.upsample, x)
    np.testing.assert_array_equal(up, jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2))
    g = jax.random.normal(jax.random.PRNGKey(1), up.shape)
    blocks = g.reshape(2, 3, 4, 2, 5, 2, 6).sum((3, 5))
    np.testing.assert_allclose(vjp(g)[0], blocks, rtol=1e-6, atol=1e-6)
    backward = jax.jit(lambda g: jax.vjp(yolo.upsample, x)[1](g)).lower(g).compile().as_text()
    assert " reduce(" not in backward  # slices added (a reduce over the inner size-2 axes is slow on a CPU)
