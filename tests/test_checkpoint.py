"""Orbax checkpoints: round trip, retention (last k + best), config, locating a checkpoint."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.engine.checkpoint import Checkpoints, load_state, locate


def _state(value: float) -> dict:
    return {"params": {"w": jnp.full((3, 2), value)}, "step": jnp.int32(int(value))}


def test_state_and_config_round_trip(tmp_path):
    with Checkpoints(str(tmp_path), keep=2) as ckpt:
        ckpt.save(1, _state(1.0), config={"lr": 0.1, "name": "3-32"})
        ckpt.wait()
        restored = ckpt.restore(1, _state(0.0))
        assert ckpt.restore_config(1) == {"lr": 0.1, "name": "3-32"}
    np.testing.assert_array_equal(restored["params"]["w"], 1.0)
    assert isinstance(restored["params"]["w"], jax.Array)


def test_keeps_the_last_k_and_the_best(tmp_path):
    accuracies = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7, 5: 0.65}
    with Checkpoints(str(tmp_path), keep=2, best_metric="accuracy") as ckpt:
        for step, acc in accuracies.items():
            ckpt.save(step, _state(step), config={}, metrics={"accuracy": acc})
        ckpt.wait()
        assert ckpt.best_step() == 2 and ckpt.latest_step() == 5
    assert sorted(int(d) for d in os.listdir(tmp_path) if d.isdigit()) == [2, 4, 5]


def test_load_state_finds_the_latest_step_from_a_workdir(tmp_path):
    directory = tmp_path / "checkpoints"
    with Checkpoints(str(directory), keep=3) as ckpt:
        for step in (1, 2):
            ckpt.save(step, _state(step), config={"step": step})
    assert locate(str(tmp_path)) == (str(directory), 2)
    assert locate(str(directory / "1")) == (str(directory), 1)
    state, config = load_state(str(tmp_path))
    np.testing.assert_array_equal(state["params"]["w"], 2.0)
    assert config == {"step": 2}


def test_locate_rejects_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from"):
        locate(str(tmp_path))
