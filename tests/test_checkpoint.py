"""Orbax checkpoints: round trip, retention (last k + best), locating a checkpoint, failed writes, and
damaged checkpoints (garbled, truncated or missing files, non-finite values) detected and stepped over."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from snnjax.engine.checkpoint import CheckpointError, Checkpoints, DamagedCheckpoint, digest, load_state, locate


def _state(value: float) -> dict:
    noise = np.random.default_rng(int(value)).normal(size=(64, 64)).astype(np.float32)
    return {"params": {"w": jnp.asarray(noise + value)}, "step": jnp.int32(int(value))}


def test_state_and_config_round_trip(tmp_path):
    with Checkpoints(str(tmp_path), keep=2) as ckpt:
        ckpt.save(1, _state(1.0), config={"lr": 0.1, "name": "3-32"})
        restored = ckpt.restore(1, _state(0.0))
        assert ckpt.restore_config(1) == {"lr": 0.1, "name": "3-32"}
    np.testing.assert_array_equal(restored["params"]["w"], _state(1.0)["params"]["w"])
    assert isinstance(restored["params"]["w"], jax.Array)


def test_keeps_the_last_k_and_the_best(tmp_path):
    accuracies = {1: 0.5, 2: 0.9, 3: 0.6, 4: 0.7, 5: 0.65}
    with Checkpoints(str(tmp_path), keep=2, best_metric="accuracy") as ckpt:
        for step, acc in accuracies.items():
            ckpt.save(step, _state(step), config={}, metrics={"accuracy": acc})
        assert ckpt.best_step() == 2 and ckpt.latest_step() == 5
    assert sorted(int(d) for d in os.listdir(tmp_path) if d.isdigit()) == [2, 4, 5]


def test_load_state_finds_the_latest_step_from_a_workdir(tmp_path):
    directory = tmp_path / "checkpoints"
    with Checkpoints(str(directory), keep=3) as ckpt:
        for step in (1, 2):
            ckpt.save(step, _state(step), config={"step": step})
    assert locate(str(tmp_path)) == (str(directory), None)
    assert locate(str(directory / "1")) == (str(directory), 1)
    state, config = load_state(str(tmp_path))
    np.testing.assert_array_equal(state["params"]["w"], _state(2)["params"]["w"])
    assert config == {"step": 2} and load_state(str(directory / "1"))[1] == {"step": 1}


def test_locate_rejects_a_folder_without_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="no orbax checkpoint at"):
        locate(str(tmp_path))


def test_the_digest_ignores_containers_but_not_values():
    state = _state(1.0)
    assert digest(state) == digest({"step": state["step"], "params": dict(state["params"])})
    assert digest(state) != digest(_state(2.0))


def test_a_non_finite_state_is_not_saved(tmp_path):
    state = {"w": jnp.array([1.0, jnp.nan])}
    with Checkpoints(str(tmp_path)) as ckpt:
        with pytest.raises(CheckpointError, match="refusing to save a state with 1 non-finite values"):
            ckpt.save(1, state, config={})
        assert ckpt.all_steps() == []
        with pytest.raises(DamagedCheckpoint, match="1 non-finite values"):
            ckpt.verify(1, state)


def test_a_failed_write_raises_at_once_naming_the_step_and_the_fix(tmp_path, monkeypatch):
    with Checkpoints(str(tmp_path)) as ckpt:
        ckpt.save(1, _state(1.0), config={})

        def no_space(*args, **kwargs):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(ckpt._manager, "save", no_space)
        with pytest.raises(CheckpointError, match=r"saving checkpoint 2 in .* failed: .*No space left.*free space"):
            ckpt.save(2, _state(2.0), config={})


def test_an_unusable_checkpoints_folder_is_named(tmp_path):
    (tmp_path / "checkpoints").write_text("a file where the folder should be")
    with pytest.raises(CheckpointError, match=r"checkpoints folder .*checkpoints: .*; it must be a writable folder"):
        Checkpoints(str(tmp_path / "checkpoints"))


def _largest_data_file(step_dir) -> str:
    files = [os.path.join(d, f) for d, _, names in os.walk(step_dir / "state") for f in names if "/d" in d]
    return max(files, key=os.path.getsize)


def _garble(step_dir):
    path = _largest_data_file(step_dir)
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        f.write(np.random.default_rng(0).bytes(64))


def _truncate(step_dir):
    path = _largest_data_file(step_dir)
    os.truncate(path, os.path.getsize(path) // 2)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_garble, "differ from the digest"),
        (_truncate, "unreadable"),
        (lambda d: os.remove(d / "state" / "_METADATA"), "unreadable"),
        (lambda d: os.remove(d / "state" / "manifest.ocdbt"), "unreadable"),
    ],
    ids=["garbled", "truncated", "no_metadata", "no_manifest"],
)
def test_a_damaged_latest_checkpoint_is_moved_aside_and_the_previous_one_used(tmp_path, damage, reason):
    directory = tmp_path / "checkpoints"
    with Checkpoints(str(directory), keep=3) as ckpt:
        for step in (1, 2):
            ckpt.save(step, _state(step), config={})
        damage(directory / "2")
        restored = ckpt.restore_latest()  # as saved, without a target (load_state, --init_from, --eval_only)
        assert restored.step == 1 and [step for step, _ in restored.damaged] == [2]
        assert reason in restored.damaged[0][1]
        np.testing.assert_array_equal(restored.state["params"]["w"], _state(1)["params"]["w"])
        assert ckpt.all_steps() == [1] and os.path.isdir(tmp_path / "checkpoints_damaged" / "2")
        ckpt.save(2, _state(2.0), config={})  # the step can be saved again
        assert ckpt.restore_latest(_state(0.0)).step == 2


def test_without_its_metadata_a_checkpoint_still_restores_into_a_target_and_is_verified(tmp_path):
    with Checkpoints(str(tmp_path), keep=3) as ckpt:
        ckpt.save(1, _state(1.0), config={})
        os.remove(tmp_path / "1" / "state" / "_METADATA")
        restored = ckpt.restore_latest(_state(0.0))  # the target gives the structure the metadata held
        assert restored.step == 1 and restored.damaged == []
        np.testing.assert_array_equal(restored.state["params"]["w"], _state(1)["params"]["w"])


def test_no_intact_checkpoint_is_a_clear_error(tmp_path):
    with Checkpoints(str(tmp_path), keep=3) as ckpt:
        ckpt.save(1, _state(1.0), config={})
        _garble(tmp_path / "1")
        with pytest.raises(CheckpointError, match=r"no intact checkpoint in .* \(damaged, moved to .*_damaged: 1: "):
            ckpt.restore_latest(_state(0.0))
