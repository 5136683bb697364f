"""What the report asks of a trained run's model: the encoder's spikes on test images, the learned
threshold schedule θ_t, and a detector's boxes on test images.

A run folder is rebuilt from its ``config.json`` and its latest checkpoint (the EMA weights when kept),
so the data must be where the run found it (synthetic data is generated again).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from snnjax.encoding import TemporalEncoder, threshold_schedule
from snnjax.engine.checkpoint import load_state
from snnjax.engine.rundir import CONFIG, RunFolder
from snnjax.engine.state import saved_variables
from snnjax.record import record_spikes
from snnjax.settings import from_dict, replace_paths
from snnjax.trained import quiet_orbax


@dataclasses.dataclass
class LoadedRun:
    """A run's task (model, data, mesh), evaluation variables and config."""

    task: Any
    variables: dict
    config: Any


def load_run(workdir: str, script: str) -> LoadedRun:
    """The run in ``workdir`` of ``script`` ("cifar" or "voc"), on this process's devices."""
    if script == "voc":
        from snnjax.tasks.detection import DetectionConfig as config_cls
        from snnjax.tasks.detection import setup
    else:
        from snnjax.tasks.classification import ClassificationConfig as config_cls
        from snnjax.tasks.classification import setup
    config = from_dict(config_cls, RunFolder(workdir).read_json(CONFIG))
    config = replace_paths(config, {"loop.num_devices": 1, "loop.distributed": False})
    with quiet_orbax():
        state, _ = load_state(workdir)
    return LoadedRun(setup(config), saved_variables(state), config)


def test_images(run: LoadedRun, count: int) -> tuple[np.ndarray, jax.Array]:
    """The first ``count`` test images of the run's dataset: uint8 ``[N, H, W, C]`` for display and the
    model's input (normalised for a classifier, scaled to [0, 1] for a detector)."""
    task = run.task
    if hasattr(task, "test_data"):
        from snnjax.tasks.classification.data import normalize

        images = np.asarray(task.test_data["x"][:count])
        return images, normalize(images, task.mean, task.std)
    batch = next(task.dataset.eval_batches(count))
    images = batch["image"][: min(count, int(np.sum(batch["index"] >= 0)))]
    return images, jnp.asarray(images, jnp.float32) / 255.0


def encoder_spikes(run: LoadedRun, inputs: jax.Array, seed: int = 0) -> np.ndarray:
    """The temporal encoder's spikes ``[T, N, H, W, C]`` for model inputs ``inputs`` (evaluation mode; for
    direct encoding, the spikes of the LIF that follows the analog input)."""
    recording = record_spikes(
        run.task.model, run.variables, inputs, train=False, rngs={"encoding": jax.random.key(seed)}
    )
    return np.asarray(next(s for name, s in recording.spikes.items() if name.split("/")[0] == "encoder"))


def thresholds(run: LoadedRun) -> tuple[np.ndarray, np.ndarray] | None:
    """``(learned, initial)`` threshold schedules θ_t ``[T, C]`` of the encoder (None for direct
    encoding or an ANN, which have none); without LT both are the fixed initial schedule."""
    spiking = getattr(run.config.model, "spiking", None)
    if spiking is None or getattr(run.config.model, "mode", "snn") == "ann" or spiking.encoding == "direct":
        return None
    encoder = run.variables["params"].get("encoder", {})  # no parameters without LT and LC
    theta0, decay = TemporalEncoder.threshold_init, TemporalEncoder.threshold_decay_init
    if "threshold" in encoder:
        channels = encoder["threshold"].shape[0]
        learned = threshold_schedule(
            jnp.maximum(encoder["threshold"], 1e-3), jax.nn.sigmoid(encoder["threshold_decay_logit"]), spiking.T
        )
    else:
        channels, learned = 1, threshold_schedule(jnp.full((1,), theta0), jnp.full((1,), decay), spiking.T)
    initial = threshold_schedule(jnp.full((channels,), theta0), jnp.full((channels,), decay), spiking.T)
    return np.asarray(learned), np.asarray(initial)


def detections(run: LoadedRun, inputs: jax.Array, min_score: float = 0.25) -> list[np.ndarray]:
    """A detector's boxes on model inputs ``inputs``: per image ``[n, 6]`` (x1, y1, x2, y2, score, class) in
    input pixels, those scoring at least ``min_score``."""
    evaluator = run.task.evaluators[0]
    images = jnp.round(inputs * 255.0).astype(jnp.uint8)
    key = jax.random.key_data(jax.random.key(0))
    found, counts, _, _ = jax.device_get(jax.jit(evaluator.detect)(run.variables, images, key))
    return [found[i, : counts[i]][found[i, : counts[i], 4] >= min_score] for i in range(len(found))]
