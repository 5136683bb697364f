"""snnjax.plots: the recording figures write a PNG whatever the layer shapes, and the raster draws the
neurons it says it draws."""

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from snnjax import plots

RNG = np.random.default_rng(0)
CONV = (RNG.uniform(size=(4, 6, 6, 5)) < 0.3).astype(np.float32)  # [T, H, W, C] of one example
TOKENS = (RNG.uniform(size=(4, 9, 16)) < 0.1).astype(np.float32)


def test_raster_shows_only_active_neurons_and_their_spikes():
    spikes = np.zeros((3, 10), np.float32)
    spikes[[0, 2], 4] = 1
    spikes[1, 7] = 1
    fig, ax = plt.subplots()
    plots.raster(ax, spikes, neurons=5)
    shown = ax.images[0].get_array()
    np.testing.assert_array_equal(shown, [[1, 0, 1], [0, 1, 0]])  # neurons 4 and 7, time in columns
    plt.close(fig)


def test_recording_figures_are_written(tmp_path):
    v = np.cumsum(RNG.normal(size=CONV.shape), axis=0).astype(np.float32)
    paths = [
        plots.layer_rasters(
            {"encoder": CONV, "stage1/q_lif": TOKENS, "silent": np.zeros_like(TOKENS)}, tmp_path / "r.png"
        ),
        plots.feature_maps(CONV, tmp_path / "f.png", channels=3, title="encoder"),
        plots.membrane_traces(v, CONV, tmp_path / "v.png"),
        plots.membrane_traces(v, np.zeros_like(CONV), tmp_path / "silent.png"),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 100
