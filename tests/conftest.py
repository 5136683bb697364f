"""Shared test helpers."""

import dataclasses
import importlib.util
import os
import pathlib

import jax
import numpy as np
import pytest

from snnjax.checkpoint import load_state
from snnjax.train import loop
from snnjax.train.config import to_dict

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_experiment(name: str):
    """Imports ``experiments/<name>.py`` as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def experiment():
    return load_experiment


def train_in(task, workdir: str) -> dict:
    """Trains (or resumes) ``task``'s experiment in another ``workdir``; returns its results."""
    config = dataclasses.replace(task.config, loop=dataclasses.replace(task.config.loop, workdir=workdir))
    return loop.train(task, config.loop, config.optim, to_dict(config), task.mesh)


class Interrupted(Exception):
    pass


def interrupt_and_resume(task, workdir: str, finished_workdir: str, monkeypatch) -> dict:
    """Trains in ``workdir`` until the second epoch starts, checks that no results were written, resumes
    and checks that the final state equals the uninterrupted run's in ``finished_workdir``; returns the
    resumed results."""
    batches = task.train_batches

    def interrupt_in_second_epoch(epoch, rng):
        if epoch == 1:
            raise Interrupted
        return batches(epoch, rng)

    monkeypatch.setattr(task, "train_batches", interrupt_in_second_epoch)
    with pytest.raises(Interrupted):
        train_in(task, workdir)
    monkeypatch.undo()
    assert not os.path.exists(os.path.join(workdir, "results.json"))
    resumed = train_in(task, workdir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_state(workdir)[0], load_state(finished_workdir)[0])
    return resumed
