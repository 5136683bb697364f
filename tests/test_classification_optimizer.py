"""AdamW with the per-epoch timm cosine schedule (docs/qkformer.md §2) and the weight-decay mask."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax.engine.optimizer import kernel_mask
from snnjax.models.qkformer import qkformer
from snnjax.models.spiking import SpikingConfig
from snnjax.tasks.classification.optimizer import OptimConfig, epoch_learning_rate, make_optimizer, make_schedule


@pytest.mark.parametrize(
    "epoch, lr",
    [
        (0, 1e-5),
        (1, 5.95e-5),
        (19, 9.505e-4),
        (20, 9.939e-4),
        (100, 8.55e-4),
        (200, 5.05e-4),
        (300, 1.55e-4),
        (399, 1.002e-5),
        (400, 1e-5),
        (405, 1e-5),
        (409, 1e-5),
    ],
)
def test_schedule_matches_the_official_log(epoch, lr):
    assert float(epoch_learning_rate(epoch, OptimConfig(), 410)) == pytest.approx(lr, rel=5e-4)


def test_learning_rate_is_constant_within_an_epoch():
    schedule = make_schedule(OptimConfig(), 410, steps_per_epoch=781)
    lrs = [float(schedule(s)) for s in (781 * 20, 781 * 20 + 400, 781 * 21 - 1)]
    assert lrs[0] == lrs[1] == lrs[2] == pytest.approx(9.939e-4, rel=5e-4)
    assert float(schedule(781 * 21)) < lrs[0]


def test_schedule_rejects_a_warmup_longer_than_the_cosine():
    with pytest.raises(
        ValueError, match=r"^warmup_epochs: got 5; accepted: an int in \[0, epochs - cooldown_epochs = 3\]"
    ):
        make_schedule(OptimConfig(warmup_epochs=5, cooldown_epochs=0), 3, 10)
    with pytest.raises(ValueError, match=r"^epochs: got 10; accepted: an int > cooldown_epochs = 10"):
        make_schedule(OptimConfig(), 10, 10)


def test_the_optimizer_logs_the_epoch_learning_rate_and_keeps_no_ema():
    optimizer = make_optimizer(OptimConfig(), 410, 781)
    assert optimizer.learning_rate(20) == pytest.approx(9.939e-4, rel=5e-4) and optimizer.ema_decay is None


def test_weight_decay_applies_to_conv_and_dense_kernels_only():
    model = qkformer("3-32", spiking=SpikingConfig(T=2, encoding="ttfs", neuron="learnable"))
    params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)))["params"]
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    mask = jax.tree_util.tree_leaves(kernel_mask(params))
    flat = {"/".join(k.key for k in path): (leaf.ndim, decay) for (path, leaf), decay in zip(leaves, mask)}
    decayed = {name for name, (_, decay) in flat.items() if decay}
    assert decayed == {name for name in flat if name.endswith("/kernel")}
    assert "head/kernel" in decayed and "encoder/conv/kernel" in decayed
    kept = set(flat) - decayed
    assert {"encoder/threshold", "encoder/threshold_decay_logit", "head/bias"} <= kept
    assert any(n.endswith("_lif/decay") for n in kept) and any(n.endswith("_lif/weight") for n in kept)
    assert any(n.endswith("bn/scale") for n in kept) and any(n.endswith("conv/bias") for n in kept)
    assert all(ndim >= 2 for name, (ndim, _) in flat.items() if name in decayed)


def test_adamw_decays_masked_leaves_like_torch():
    params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}}
    config = OptimConfig(lr=0.1, warmup_epochs=0, cooldown_epochs=0, weight_decay=0.5)
    tx = make_optimizer(config, epochs=1, steps_per_epoch=1).tx
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["dense"]["kernel"], 1.0 - 0.1 * 0.5)  # p -= lr * wd * p
    np.testing.assert_allclose(new["dense"]["bias"], 1.0)


def test_gradient_clipping_is_optional():
    params = {"kernel": jnp.ones((2, 2))}
    grads = {"kernel": jnp.full((2, 2), 100.0)}
    config = OptimConfig(lr=1.0, warmup_epochs=0, cooldown_epochs=0, weight_decay=0.0, clip_norm=1.0)
    tx = make_optimizer(config, epochs=1, steps_per_epoch=1).tx
    updates, _ = tx.update(grads, tx.init(params), params)
    assert np.all(np.isfinite(updates["kernel"]))
    assert len(make_optimizer(config, 1, 1).tx.init(params)) == 2  # clip state + adamw state
