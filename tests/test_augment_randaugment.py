"""RandAugment ops against closed forms and against PIL (what timm runs), on hand-made images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from snnjax.tasks.classification.data.randaugment import OPS, apply_ops, level_to_arg, rand_augment

FILL = (125, 123, 114)
RNG = np.random.default_rng(0)
# 400 pixels per channel, so that Equalize's step (pixels - count of the top value) // 255 is > 0.
IMAGE = RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)
IMAGE[..., 1] = np.clip(IMAGE[..., 1], 40, 200)
_apply = jax.jit(apply_ops)  # one compilation: every test uses IMAGE's shape
_level = jax.jit(level_to_arg)


def run(name: str, arg: float, image: np.ndarray = IMAGE) -> np.ndarray:
    out = _apply(
        jnp.asarray(image, jnp.float32)[None],
        jnp.array([OPS.index(name)]),
        jnp.array([arg], jnp.float32),
        jnp.array(FILL, jnp.float32),
    )
    return np.asarray(out[0]).astype(np.int64)


def arg_of(name: str, magnitude: float, negate: bool = False) -> float:
    op = jnp.array([OPS.index(name)])
    return float(_level(op, jnp.array([magnitude]), jnp.array([negate]))[0])


X = IMAGE.astype(np.int64)


def test_op_list_is_timms_increasing_list():
    assert len(OPS) == 15 and OPS[0] == "AutoContrast" and OPS[-1] == "TranslateYRel"


@pytest.mark.parametrize(
    "name, magnitude, negate, expected",
    [
        ("Rotate", 9.0, True, -27.0),
        ("PosterizeIncreasing", 9.0, False, 1.0),
        ("PosterizeIncreasing", 10.0, False, 0.0),
        ("SolarizeIncreasing", 9.0, False, 256 - 230),
        ("SolarizeAdd", 9.0, False, 99.0),
        ("ColorIncreasing", 9.0, True, 1 - 0.81),
        ("SharpnessIncreasing", 10.0, True, 0.1),
        ("ShearX", 9.0, True, -0.27),
        ("TranslateYRel", 5.0, False, 0.225),
        ("Invert", 9.0, False, 0.0),
    ],
)
def test_level_to_arg_matches_timm(name, magnitude, negate, expected):
    assert arg_of(name, magnitude, negate) == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_invert():
    np.testing.assert_array_equal(run("Invert", 0.0), 255 - X)


@pytest.mark.parametrize("bits", [0, 1, 2, 4])
def test_posterize_keeps_high_bits(bits):
    mask = (0xFF << (8 - bits)) & 0xFF
    np.testing.assert_array_equal(run("PosterizeIncreasing", bits), X & mask)


@pytest.mark.parametrize("threshold", [0, 26, 128, 256])
def test_solarize_inverts_above_threshold(threshold):
    np.testing.assert_array_equal(run("SolarizeIncreasing", threshold), np.where(X < threshold, X, 255 - X))


def test_solarize_add():
    np.testing.assert_array_equal(run("SolarizeAdd", 99), np.where(X < 128, np.minimum(X + 99, 255), X))


def test_autocontrast_stretches_each_channel_and_keeps_constant_ones():
    image = IMAGE.copy()
    image[..., 2] = 77
    lo, hi = X[..., 1].min(), X[..., 1].max()
    out = run("AutoContrast", 0.0, image)
    np.testing.assert_array_equal(out[..., 1], (X[..., 1] - lo) * 255 // (hi - lo))
    assert out[..., 0].min() == 0 and out[..., 0].max() == 255
    np.testing.assert_array_equal(out[..., 2], 77)


def test_equalize_is_pil_histogram_lut():
    h = np.stack([np.bincount(IMAGE[..., c].ravel(), minlength=256) for c in range(3)])
    step = (400 - h[np.arange(3), IMAGE.max((0, 1))]) // 255
    assert (step > 0).all()
    below = np.cumsum(h, axis=1) - h
    lut = np.minimum((step[:, None] // 2 + below) // step[:, None], 255)
    np.testing.assert_array_equal(run("Equalize", 0.0), lut[np.arange(3), X])
    flat = np.zeros_like(IMAGE)
    flat[:2] = 9  # two grey levels, 40 pixels above the rest: step = (400 - 40) // 255 = 1
    np.testing.assert_array_equal(run("Equalize", 0.0, flat), np.where(flat == 9, 255, 0))  # min(360, 255)


def test_brightness_color_contrast_blend_formulas():
    f = 1.5
    np.testing.assert_array_equal(run("BrightnessIncreasing", f), np.clip(np.floor(f * X), 0, 255))
    luma = (X[..., 0] * 19595 + X[..., 1] * 38470 + X[..., 2] * 7471 + 32768) >> 16
    np.testing.assert_array_equal(run("ColorIncreasing", 0.0), np.repeat(luma[..., None], 3, -1))
    mean = int(luma.mean() + 0.5)
    np.testing.assert_array_equal(run("ContrastIncreasing", 0.0), np.full_like(X, mean))
    np.testing.assert_array_equal(run("ContrastIncreasing", 1.0), X)


def test_sharpness_zero_is_pil_smooth_filter():
    image = np.zeros_like(IMAGE)
    image[2, 2] = 130
    image[0, 5] = 130  # border pixels are kept
    out = run("SharpnessIncreasing", 0.0, image)
    expected = np.zeros_like(X)
    expected[1:4, 1:4] = 10  # round(130 / 13)
    expected[2, 2] = 50  # round(130 * 5 / 13)
    expected[0, 5] = 130
    expected[1, 4:7] += 10
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(run("SharpnessIncreasing", 1.0), X)


def test_translate_by_whole_pixels_fills_with_mean_colour():
    out = run("TranslateXRel", 0.25)  # x_in = x + 5
    np.testing.assert_array_equal(out[:, :15], X[:, 5:])
    np.testing.assert_array_equal(out[:, 15:], np.broadcast_to(FILL, (20, 5, 3)))
    out = run("TranslateYRel", -0.25)  # y_in = y - 5
    np.testing.assert_array_equal(out[5:], X[:15])
    np.testing.assert_array_equal(out[:5], np.broadcast_to(FILL, (5, 20, 3)))


def test_rotate_90_is_counter_clockwise():
    np.testing.assert_allclose(run("Rotate", 90.0), np.rot90(X), atol=1)


def _pil(name: str, arg: float) -> np.ndarray:
    image = Image.fromarray(IMAGE)
    warp = dict(resample=Image.BILINEAR, fillcolor=FILL)
    width, height = image.size
    ops = {
        "AutoContrast": lambda: ImageOps.autocontrast(image),
        "Equalize": lambda: ImageOps.equalize(image),
        "Invert": lambda: ImageOps.invert(image),
        "Rotate": lambda: image.rotate(arg, **warp),
        "PosterizeIncreasing": lambda: ImageOps.posterize(image, int(arg)),
        "SolarizeIncreasing": lambda: ImageOps.solarize(image, int(arg)),
        "SolarizeAdd": lambda: image.point([min(255, i + int(arg)) if i < 128 else i for i in range(256)] * 3),
        "ColorIncreasing": lambda: ImageEnhance.Color(image).enhance(arg),
        "ContrastIncreasing": lambda: ImageEnhance.Contrast(image).enhance(arg),
        "BrightnessIncreasing": lambda: ImageEnhance.Brightness(image).enhance(arg),
        "SharpnessIncreasing": lambda: ImageEnhance.Sharpness(image).enhance(arg),
        "ShearX": lambda: image.transform(image.size, Image.AFFINE, (1, arg, 0, 0, 1, 0), **warp),
        "ShearY": lambda: image.transform(image.size, Image.AFFINE, (1, 0, 0, arg, 1, 0), **warp),
        "TranslateXRel": lambda: image.transform(image.size, Image.AFFINE, (1, 0, arg * width, 0, 1, 0), **warp),
        "TranslateYRel": lambda: image.transform(image.size, Image.AFFINE, (1, 0, 0, 0, 1, arg * height), **warp),
    }
    return np.asarray(ops[name]()).astype(np.int64)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("magnitude, negate", [(9.3, False), (7.1, True)])
def test_every_op_matches_pil(name, magnitude, negate):
    arg = arg_of(name, magnitude, negate)
    np.testing.assert_allclose(run(name, arg), _pil(name, arg), atol=1)


def test_rand_augment_applies_about_half_the_time_and_keeps_integers():
    images = jnp.asarray(RNG.integers(0, 256, (256, 20, 20, 3)), jnp.float32)
    out = jax.jit(lambda k, x: rand_augment(k, x, fill=jnp.array(FILL, jnp.float32)))(jax.random.key(1), images)
    out = np.asarray(out)
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.round(out))
    assert out.min() >= 0 and out.max() <= 255
    changed = (out != np.asarray(images)).any(axis=(1, 2, 3)).mean()
    assert 0.35 < changed < 0.55  # p = 0.5, minus ops that happen to be no-ops
