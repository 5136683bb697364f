"""augment_batch and its pieces: shapes, soft targets, mixup, erasing, flip, crop, jit and vmap."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.tasks.classification.data import POLICIES, augment_batch, normalize
from snnjax.tasks.classification.data.augment import (
    mean_fill,
    mixup,
    random_crop,
    random_erase,
    random_flip,
    smooth_targets,
)

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.1)
K = 5
RNG = np.random.default_rng(0)
IMAGES = jnp.asarray(RNG.integers(0, 256, (16, 8, 8, 3), dtype=np.uint8))
LABELS = jnp.asarray(np.arange(16) % K)


@functools.cache
def augment(policy, **kw):
    """Jitted augment_batch, compiled once per configuration for the whole module."""
    return jax.jit(functools.partial(augment_batch, policy=policy, num_classes=K, mean=MEAN, std=STD, **kw))


_erase = jax.jit(random_erase, static_argnames="prob")


def test_normalize():
    x = jnp.full((1, 1, 1, 3), 255, jnp.uint8)
    np.testing.assert_allclose(normalize(x, MEAN, STD)[0, 0, 0], [2.0, 3.0, 7.0], rtol=1e-6)
    assert normalize(x, MEAN, STD).dtype == jnp.float32


@pytest.mark.parametrize("policy", POLICIES)
def test_shapes_dtypes_and_targets_sum_to_one(policy):
    x, t = augment(policy)(jax.random.key(0), IMAGES, LABELS)
    assert x.shape == IMAGES.shape and x.dtype == jnp.float32
    assert t.shape == (16, K) and t.dtype == jnp.float32
    np.testing.assert_allclose(t.sum(1), 1.0, rtol=1e-6)


def test_none_is_normalise_and_smoothed_one_hot():
    x, t = augment("none", label_smoothing=0.1)(jax.random.key(0), IMAGES, LABELS)
    np.testing.assert_allclose(x, normalize(IMAGES, MEAN, STD), rtol=1e-6, atol=1e-6)
    expected = np.full((16, K), 0.1 / K)
    expected[np.arange(16), np.asarray(LABELS)] = 0.9 + 0.1 / K
    np.testing.assert_allclose(t, expected, rtol=1e-6)


def test_bad_policy_names_the_argument_and_choices():
    with pytest.raises(
        ValueError, match=r"(?m)^augment: got 'autoaugment'; accepted: 'official', 'crop_flip', 'none'$"
    ):
        augment_batch(
            jax.random.key(0),
            IMAGES,
            LABELS,
            policy="autoaugment",
            num_classes=K,
            mean=MEAN,
            std=STD,
        )


def test_flip_mirrors_a_hand_made_image():
    image = jnp.arange(2 * 3 * 1).reshape(1, 2, 3, 1)
    batch = jnp.repeat(image, 64, axis=0)
    out = np.asarray(random_flip(jax.random.key(0), batch))
    mirrored = np.array([[2, 1, 0], [5, 4, 3]])[..., None]
    is_flipped = (out == mirrored).all(axis=(1, 2, 3))
    is_same = (out == np.asarray(image)).all(axis=(1, 2, 3))
    assert (is_flipped | is_same).all()
    assert 16 < is_flipped.sum() < 48


def test_crop_is_a_shift_with_zero_padding():
    out = np.asarray(random_crop(jax.random.key(3), IMAGES, pad=2))
    padded = np.pad(np.asarray(IMAGES), ((0, 0), (2, 2), (2, 2), (0, 0)))
    for b in range(16):
        windows = [padded[b, i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
        assert any((w == out[b]).all() for w in windows)
    assert len({out[b].tobytes() for b in range(16)}) == 16


def test_crop_flip_keeps_pixel_values_and_skips_mixup():
    x, t = augment("crop_flip", label_smoothing=0.0)(jax.random.key(0), IMAGES, LABELS)
    np.testing.assert_array_equal(t, jax.nn.one_hot(LABELS, K))
    zero = np.asarray(normalize(jnp.zeros((1, 1, 1, 3), jnp.uint8), MEAN, STD))[0, 0, 0]
    raw = np.asarray(normalize(IMAGES, MEAN, STD))
    for b in range(16):  # every output pixel is an input pixel of the same image or the zero pad
        pixels = {tuple(np.round(p, 4)) for p in raw[b].reshape(-1, 3)} | {tuple(np.round(zero, 4))}
        assert {tuple(np.round(p, 4)) for p in np.asarray(x[b]).reshape(-1, 3)} <= pixels


def test_mixup_uses_one_lambda_and_the_reversed_batch():
    x = jnp.asarray(RNG.normal(size=(6, 2, 2, 1)), jnp.float32)
    targets = jax.nn.one_hot(jnp.arange(6) % 3, 3)
    mx, mt = jax.jit(mixup, static_argnums=3)(jax.random.key(5), x, targets, 0.5)
    lam = float(mt[0, 0])  # sample 0 has class 0, its partner (sample 5) class 2
    assert 0.0 <= lam <= 1.0
    np.testing.assert_allclose(mx, lam * x + (1 - lam) * x[::-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mt, lam * targets + (1 - lam) * targets[::-1], rtol=1e-5, atol=1e-6)


def test_official_targets_share_one_lambda_and_smoothing():
    s = 0.1
    _, t = augment("official")(jax.random.key(7), IMAGES, LABELS)
    y, partner = np.asarray(LABELS), np.asarray(LABELS)[::-1]
    core = (np.asarray(t) - s / K) / (1 - s)  # = λ e_y + (1 − λ) e_partner
    lams = [core[b, y[b]] for b in range(16) if y[b] != partner[b]]
    np.testing.assert_allclose(lams, lams[0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(t).min(), s / K, atol=1e-6)


def test_random_erase_zeros_one_box_of_the_right_size():
    ones = jnp.ones((64, 32, 32, 3))
    out = np.asarray(_erase(jax.random.key(0), ones, prob=1.0))
    for image in out:
        rows, cols = np.nonzero((image == 0).all(-1))
        assert rows.size > 0 and ((image == 0) == (image == 0)[..., :1]).all()
        h, w = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert rows.size == h * w  # one filled rectangle
        assert 0.015 <= h * w / 1024 <= 0.36
        assert 0.2 <= h / w <= 5.0
    assert (np.asarray(_erase(jax.random.key(0), ones, prob=0.0)) == 1).all()
    some = np.asarray(_erase(jax.random.key(1), jnp.ones((400, 32, 32, 3)), prob=0.25))
    assert 0.17 < (some == 0).any(axis=(1, 2, 3)).mean() < 0.33


def test_smooth_targets_and_mean_fill():
    np.testing.assert_allclose(smooth_targets(jnp.array([1]), 4, 0.2), [[0.05, 0.85, 0.05, 0.05]], rtol=1e-6)
    np.testing.assert_array_equal(mean_fill((0.4914, 0.4822, 0.4465)), [125, 123, 114])


@pytest.mark.parametrize("policy", POLICIES)
def test_vmap_over_batches(policy):
    fn = functools.partial(augment_batch, policy=policy, num_classes=K, mean=MEAN, std=STD)
    keys = jax.random.split(jax.random.key(0), 2)
    x, t = jax.jit(jax.vmap(fn))(keys, jnp.stack([IMAGES, IMAGES]), jnp.stack([LABELS, LABELS]))
    assert x.shape == (2, *IMAGES.shape) and t.shape == (2, 16, K)
    np.testing.assert_allclose(t.sum(-1), 1.0, rtol=1e-6)
