"""Programs shared between runs whose tasks have the same key (snnjax.engine.programs)."""

import jax
import numpy as np

from snnjax.engine import programs
from snnjax.engine.config import LoopConfig
from snnjax.engine.evaluators import SumEvaluator
from snnjax.engine.sharding import make_mesh
from snnjax.settings import replace_paths
from snnjax.tasks.classification.config import ClassificationConfig


def test_shared_builds_once_per_key_and_name_and_keeps_only_the_latest_key():
    built = []

    def build(value):
        return lambda: built.append(value) or value

    assert programs.shared("k1", "step", build(1)) == 1
    assert programs.shared("k1", "step", build(2)) == 1 and programs.shared("k1", "eval", build(3)) == 3
    assert programs.shared("k2", "step", build(4)) == 4
    assert programs.shared("k1", "step", build(5)) == 5  # k2 replaced k1
    assert programs.shared(None, "step", build(6)) == 6 and programs.shared(None, "step", build(7)) == 7
    programs.forget()
    assert programs.shared("k1", "step", build(8)) == 8
    assert built == [1, 3, 4, 5, 6, 7, 8]
    programs.forget()


def test_the_key_ignores_only_the_seed_and_the_run_folder():
    config = ClassificationConfig(loop=LoopConfig(workdir="runs/a", seed=0, epochs=300))
    mesh = make_mesh(config.loop)
    key = programs.program_key(config, mesh, (0.5, 0.25))
    assert key == programs.program_key(replace_paths(config, {"loop.seed": 7, "loop.workdir": "b"}), mesh, (0.5, 0.25))
    assert key != programs.program_key(replace_paths(config, {"loop.epochs": 301}), mesh, (0.5, 0.25))
    assert key != programs.program_key(config, mesh, (0.5, 0.5))  # data baked into the programs
    one_device = jax.sharding.Mesh(np.array(jax.devices()[:1]), ("other",))
    assert key != programs.program_key(config, one_device, (0.5, 0.25))
    hash(key)


def count(variables, batch, rng):
    return {"n": batch.shape[0]}


def total(variables, batch, rng):
    return {"sum": batch.sum()}


def test_sum_evaluators_of_one_key_share_a_step_only_for_the_same_sums():
    mesh = make_mesh(LoopConfig())
    a, b, c = (SumEvaluator(lambda: iter(()), sums, dict, mesh, "key") for sums in (count, count, total))
    assert a.step is b.step and a.step is not c.step
    programs.forget()
