"""YOLOv5's SGD recipe: warm-up, linear decay, accumulation, parameter groups, weight decay and EMA."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax.engine.optimizer import kernel_mask, updated
from snnjax.models.spiking import SpikingConfig
from snnjax.tasks.detection.optimizer import (
    SGDConfig,
    accumulation,
    ema_decay_schedule,
    epoch_learning_rate,
    make_optimizer,
    param_groups,
    sgd_hyperparams,
    update_iterations,
    warmup_steps,
    yolo_sgd,
)

# YOLOv5's SGD recipe (docs/yolov5n.md §3.5). VOC07+12 at batch 24: 690 batches/epoch, nw = 2070, accumulate 3.
VOC = dict(epochs=300, steps_per_epoch=690)


@pytest.mark.parametrize(
    "iteration, lr, bias_lr, momentum",
    [
        (0, 0.0, 0.1, 0.8),
        (1035, 0.5 * 0.0099670, 0.1 - 0.5 * (0.1 - 0.0099670), 0.8685),  # nw/2, epoch 1: lf = 0.99670
        (2070, 0.0099010, 0.0099010, 0.937),  # nw, epoch 3: lf = 0.99010
        (300 * 690 - 1, 1.33e-4, 1.33e-4, 0.937),  # last batch, epoch 299: lf = 0.0133
    ],
)
def test_sgd_warmup_and_decay_match_yolov5(iteration, lr, bias_lr, momentum):
    h = sgd_hyperparams(iteration, SGDConfig(), **VOC)
    assert float(h["lr"]) == pytest.approx(lr, rel=1e-4, abs=1e-9)
    assert float(h["bias_lr"]) == pytest.approx(bias_lr, rel=1e-4)
    assert float(h["momentum"]) == pytest.approx(momentum, rel=1e-5)
    assert float(epoch_learning_rate(299, SGDConfig(), 300)) == pytest.approx(1.33e-4, rel=1e-4)


def test_sgd_accumulation_ramps_like_yolov5():
    """accumulate(ni) = max(1, round(interp(ni, [0, 2070], [1, 64/24]))): 1 up to ni = 620, 2 up to 1862,
    then 3; YOLOv5 updates when ni − last update ≥ accumulate(ni)."""
    config = SGDConfig()
    assert warmup_steps(config, 690) == 2070 and accumulation(config, 24) == 3
    iteration = update_iterations(config, 690, 24)
    expected = {0: 0, 620: 620, 621: 622, 1241: 1862, 1242: 1865, 1243: 1868}
    assert {s: int(iteration(s)) for s in expected} == expected
    last_warmup = max(s for s in range(2000) if int(iteration(s)) <= 2070)
    assert int(iteration(last_warmup + 5)) - int(iteration(last_warmup + 4)) == 3


def _toy_params():
    return {"conv": {"kernel": jnp.full((1, 1, 2, 2), 2.0)}, "bn": {"scale": jnp.ones(2), "bias": jnp.ones(2)}}


def _run(tx, grads_list, params):
    state = tx.init(params)
    stepped = []
    for grads in grads_list:
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        stepped.append(bool(updated(state)))
    return params, stepped


def test_sgd_first_update_moves_only_biases_and_updates_when_yolov5_does():
    """Batch 0: weights' lr is 0, biases' is warmup_bias_lr = 0.1 with momentum 0.8; torch's Nesterov step
    of a fresh buffer is p −= lr·(1 + μ)·g. With nominal 4 at batch 1 and nw = 6, accumulate(ni) =
    [1, 2, 2, 2, 3, 4] then 4, so YOLOv5 updates at batches 0, 2, 6, 10."""
    config = SGDConfig(nominal_batch_size=4, min_warmup_steps=6, warmup_epochs=0, clip_norm=None)
    tx = make_optimizer(config, epochs=1, steps_per_epoch=100, batch_size=1).tx
    grads = jax.tree_util.tree_map(lambda p: jnp.full_like(p, 0.5), _toy_params())
    params, _ = _run(tx, [grads], _toy_params())
    np.testing.assert_allclose(params["conv"]["kernel"], 2.0)
    np.testing.assert_allclose(params["bn"]["scale"], 1.0)
    np.testing.assert_allclose(params["bn"]["bias"], 1.0 - 0.1 * 1.8 * 0.5, rtol=1e-6)
    _, stepped = _run(tx, [grads] * 11, _toy_params())
    assert [i for i, s in enumerate(stepped) if s] == [0, 2, 6, 10]


def test_sgd_accumulation_equals_one_summed_batch():
    """4 batches of 4 accumulated (summed, as YOLOv5's loss·batch backward passes) = one batch of 16
    with the summed gradient, including momentum, clipping and the rescaled weight decay."""
    base = dict(nominal_batch_size=16, min_warmup_steps=0, warmup_epochs=0, clip_norm=1.0, weight_decay=0.1)
    small = make_optimizer(SGDConfig(**base), epochs=1, steps_per_epoch=8, batch_size=4).tx
    big = make_optimizer(SGDConfig(**base), epochs=1, steps_per_epoch=2, batch_size=16).tx
    keys = jax.random.split(jax.random.key(0), 8)
    grads = [jax.tree_util.tree_map(lambda p, k=k: 0.3 * jax.random.normal(k, p.shape), _toy_params()) for k in keys]
    summed = [jax.tree_util.tree_map(lambda *g: sum(g), *grads[i : i + 4]) for i in (0, 4)]
    accumulated, stepped = _run(small, grads, _toy_params())
    reference, _ = _run(big, summed, _toy_params())
    assert stepped == [False, False, False, True] * 2
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), accumulated, reference)


def test_sgd_decays_conv_kernels_only_and_groups_biases():
    from snnjax.models.yolo import YOLOv5n

    model = YOLOv5n(num_classes=3, spiking=SpikingConfig(T=2, encoding="phase", neuron="learnable"))
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    names = ["/".join(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    decays = dict(zip(names, jax.tree_util.tree_leaves(kernel_mask(params))))
    groups = dict(zip(names, jax.tree_util.tree_leaves(param_groups(params))))
    assert {n for n, d in decays.items() if d} == {n for n in names if n.endswith("/kernel")}
    assert "model_24/m_0/kernel" in names and "encoder/conv/kernel" in names
    assert {n for n, g in groups.items() if g == "bias"} == {n for n in names if n.endswith("/bias")}
    assert "model_24/m_2/bias" in names and any(n.endswith("bn/bias") for n in names)
    assert not any(decays[n] for n in names if n.endswith(("_lif/decay", "_lif/weight", "threshold")))


def test_ema_decay_follows_yolov5():
    decay = ema_decay_schedule(SGDConfig())
    assert float(decay(1)) == pytest.approx(0.9999 * (1 - np.exp(-1 / 2000)), rel=1e-5)
    assert float(decay(2000)) == pytest.approx(0.9999 * (1 - np.exp(-1)), rel=1e-6)
    assert ema_decay_schedule(SGDConfig(ema_decay=None)) is None
    assert make_optimizer(SGDConfig(ema_decay=None), 1, 1, batch_size=4).ema_decay is None


def test_sgd_rejects_bad_values_naming_the_field():
    with pytest.raises(ValueError, match=r"^momentum: got 1.5; accepted: a finite number in \[0, 1\)"):
        SGDConfig(momentum=1.5)
    with pytest.raises(ValueError, match="^lr: got nan"):
        SGDConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="^batch_size: got None"):
        yolo_sgd(SGDConfig(), 1, 1, None)
