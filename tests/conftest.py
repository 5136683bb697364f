"""Shared test helpers."""

import importlib.util
import os
import pathlib

import jax
import numpy as np
import pytest

from snnjax.engine.checkpoint import load_state

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str):
    """Imports ``experiments/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """Folders of two tiny finished runs, trained once through the real programs on synthetic data: a
    QKFormer-2-32 classifier in the official model's configuration (direct encoding, LC, standard LIF) and
    an ANN YOLOv5n; ``{"cifar": path, "voc": path}``."""
    from snnjax.cli import cifar, voc

    root = tmp_path_factory.mktemp("trained")
    common = ["--dataset=synthetic", "--epochs=1", "--no-progress", "--unroll=1"]
    cifar.main(
        [*common, f"--workdir={root / 'cifar'}", "--model=2-32", "--image_size=8", "--synthetic_train=64"]
        + ["--synthetic_test=16", "--batch_size=16", "--encoding=direct", "--neuron=lif"]
    )
    voc.main(
        [*common, f"--workdir={root / 'voc'}", "--img_size=32", "--synthetic_train=16", "--synthetic_test=8"]
        + ["--batch_size=8", "--eval_batch_size=8", "--mode=ann"]
    )
    return {"cifar": str(root / "cifar"), "voc": str(root / "voc")}


@pytest.fixture
def experiment():
    return load_experiment


def repeat_first_batch(trainer, steps: int):
    """Trains ``steps`` steps from a fresh state on the first batch of epoch 0; returns the final state,
    the last step's metrics and every step's loss."""
    rng = jax.random.key_data(jax.random.key(0))
    state = trainer.init(rng)
    batch = next(trainer.task.train_batches(0, rng))
    losses = []
    for _ in range(steps):
        state, metrics = trainer.train_step(state, batch)
        losses.append(float(metrics["loss"]))
    return state, metrics, losses


class Interrupted(Exception):
    pass


def interrupt_and_resume(trainer, workdir: str, finished_workdir: str, monkeypatch) -> dict:
    """Trains in ``workdir`` until the second epoch starts, checks that no results were written, resumes
    and checks that the final state equals the uninterrupted run's in ``finished_workdir``; returns the
    resumed results."""
    task = trainer.task
    batches = task.train_batches

    def interrupt_in_second_epoch(epoch, rng, start=0):
        if epoch == 1:
            raise Interrupted
        return batches(epoch, rng, start)

    monkeypatch.setattr(task, "train_batches", interrupt_in_second_epoch)
    with pytest.raises(Interrupted):
        trainer.train(workdir)
    monkeypatch.undo()
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    resumed = trainer.train(workdir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_state(workdir)[0], load_state(finished_workdir)[0])
    return resumed
