"""The generic loop on the classification task: learning, data parallelism, checkpoint/resume,
results files, eval-only.

One tiny configuration for every test (QKFormer-2-32, T = 2, 8×8 synthetic images), so the train
and eval steps compile once per process (the loop caches them per task).
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from conftest import interrupt_and_resume

from snnjax.checkpoint import load_state
from snnjax.models.convert import export_official_qkformer
from snnjax.models.spiking import SpikingConfig
from snnjax.train import classification, loop
from snnjax.train.config import (
    ClassificationConfig,
    ConfigMismatchError,
    DataConfig,
    LoopConfig,
    ModelConfig,
    OptimConfig,
    to_dict,
)


def tiny_config(workdir: str, **loop_fields) -> ClassificationConfig:
    """The shared tiny experiment: 64 training images, batch 16 (4 steps/epoch), 2 epochs."""
    return ClassificationConfig(
        loop=LoopConfig(
            workdir=workdir, epochs=2, batch_size=16, eval_batch_size=32, seed=0, progress=False, **loop_fields
        ),
        model=ModelConfig(name="2-32", spiking=SpikingConfig(T=2, encoding="ttfs", neuron="learnable")),
        data=DataConfig(
            dataset="synthetic", augment="crop_flip", synthetic_train=64, synthetic_test=40, synthetic_image_size=8
        ),
        optim=OptimConfig(lr=5e-3, warmup_epochs=0, cooldown_epochs=0),
    )


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return classification.setup(tiny_config(str(tmp_path_factory.mktemp("run") / "a")))


@pytest.fixture(scope="module")
def finished(task):
    """The uninterrupted run: (workdir, results)."""
    return task.config.loop.workdir, classification.train(task)


def test_a_few_steps_lower_the_loss(task):
    programs = loop.programs(task, task.config.optim, task.config.loop.epochs, task.mesh)
    rng = jax.random.key_data(jax.random.key(0))
    state = programs.init(rng)
    batch = next(task.train_batches(0, rng))
    losses = []
    for _ in range(8):
        state, metrics = programs.train_step(state, batch, task.data)
        losses.append(float(metrics["loss"]))
    assert np.mean(losses[-2:]) < losses[0] - 0.05, losses


TWO_DEVICES = textwrap.dedent("""
    import sys
    import jax, numpy as np
    sys.path.insert(0, {tests!r})
    from test_train_loop import tiny_config
    from snnjax.train import classification, loop

    assert jax.device_count() == 2, jax.devices()
    task = classification.setup(tiny_config({workdir!r}, num_devices=2))
    programs = loop.programs(task, task.config.optim, task.config.loop.epochs, task.mesh)
    rng = jax.random.key_data(jax.random.key(0))
    treedef = jax.tree_util.tree_structure(jax.eval_shape(programs.init_state, rng))
    with np.load({initial!r}) as f:
        initial = jax.tree_util.tree_unflatten(treedef, [f[f"arr_{{i}}"] for i in range(len(f.files))])
    batch = next(task.train_batches(0, rng))
    state, metrics = programs.train_step(loop.replicate(initial, task.mesh), batch, task.data)
    assert len(state.params["head"]["kernel"].sharding.device_set) == 2
    np.savez({result!r}, *jax.tree_util.tree_leaves(jax.device_get((state.params, state.model_state, metrics))))
""")


def test_two_simulated_devices_take_the_same_step_as_one(task, tmp_path):
    """XLA_FLAGS must be set before JAX starts, so the 2-device step runs in a subprocess. One step is
    compared: it agrees to float32 round-off (6e-8 here), but a spiking network under Adam amplifies
    round-off chaotically over later steps (spikes at threshold flip), so longer runs agree loosely."""
    programs = loop.programs(task, task.config.optim, task.config.loop.epochs, task.mesh)
    rng = jax.random.key_data(jax.random.key(0))
    initial = jax.device_get(programs.init(rng))
    np.savez(tmp_path / "initial.npz", *jax.tree_util.tree_leaves(initial))
    state, metrics = programs.train_step(
        loop.replicate(initial, task.mesh), next(task.train_batches(0, rng)), task.data
    )
    expected = jax.tree_util.tree_leaves(jax.device_get((state.params, state.model_state, metrics)))
    script = TWO_DEVICES.format(
        tests=os.path.dirname(os.path.abspath(__file__)),
        workdir=str(tmp_path / "w"),
        initial=str(tmp_path / "initial.npz"),
        result=str(tmp_path / "result.npz"),
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(tmp_path / "result.npz") as f:
        for i, want in enumerate(expected):
            np.testing.assert_allclose(f[f"arr_{i}"], want, rtol=1e-5, atol=1e-6)


def test_results_and_metrics_files_are_written(finished):
    workdir, results = finished
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f) == results
    assert 0.0 <= results["accuracy"] <= 1.0 and np.isfinite(results["loss"])
    assert results["params"] > 0 and results["epochs"] == 2 and results["wall_time_s"] > 0
    assert results["config"]["model"]["name"] == "2-32"
    rates = results["firing_rates"]
    assert "encoder" in rates and "stage1_0/tssa/q_lif" in rates and all(0 <= r <= 1 for r in rates.values())
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train_loss", "train_accuracy", "eval_accuracy", "lr", "images_per_s"} <= records[-1].keys()
    assert records[-1]["eval_accuracy"] == results["accuracy"]


def test_an_interrupted_and_resumed_run_ends_with_the_same_parameters(task, finished, tmp_path, monkeypatch):
    workdir = str(tmp_path / "b")
    resumed = interrupt_and_resume(task, workdir, finished[0], monkeypatch)
    assert resumed["accuracy"] == finished[1]["accuracy"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2]


def test_resuming_with_a_different_config_names_the_fields(task, finished):
    workdir, _ = finished
    spiking = dataclasses.replace(task.config.model.spiking, T=4)
    config = dataclasses.replace(
        task.config,
        optim=dataclasses.replace(task.config.optim, lr=1e-4),
        model=dataclasses.replace(task.config.model, spiking=spiking),
    )
    with pytest.raises(ConfigMismatchError, match=r"model\.spiking\.T: 2 -> 4; optim\.lr"):
        loop.train(task, config.loop, config.optim, to_dict(config), task.mesh)


def test_a_finished_run_is_not_trained_again(task, finished):
    workdir, results = finished
    stamp = os.path.getmtime(os.path.join(workdir, "results.json"))
    assert classification.train(task) == results
    assert os.path.getmtime(os.path.join(workdir, "results.json")) == stamp


def test_global_batch_splits_process_local_data_over_the_mesh(task):
    batch = loop.global_batch({"x": np.arange(8.0)}, task.mesh)
    np.testing.assert_array_equal(batch["x"], np.arange(8.0))
    assert batch["x"].sharding == loop.batch_sharding(task.mesh)


def test_eval_only_from_the_checkpoint_reproduces_the_accuracy(task, finished):
    workdir, results = finished
    evaluated = classification.evaluate(task)
    assert evaluated["accuracy"] == results["accuracy"]
    assert evaluated["loss"] == pytest.approx(results["loss"], rel=1e-6)
    assert os.path.exists(os.path.join(workdir, "eval.json"))


def test_init_from_a_checkpoint_loads_its_variables_and_rejects_another_model(task, finished):
    workdir, _ = finished
    config = dataclasses.replace(task.config, init_from=workdir)
    variables = classification.pretrained_variables(config, task.model)
    state, _ = load_state(workdir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables["params"], state["params"])
    assert variables.keys() == {"params", "batch_stats"}
    spiking = dataclasses.replace(config.model.spiking, T=4)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, spiking=spiking))
    with pytest.raises(ValueError, match=r"init_from: .*model\.spiking\.T: 2 -> 4$"):
        classification.pretrained_variables(other, task.model)


def test_eval_only_from_official_weights_matches_the_same_variables(tmp_path):
    path = str(tmp_path / "official.npz")
    config = tiny_config(str(tmp_path / "official"))
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, spiking=SpikingConfig(T=2)), eval_only=True, init_from=path
    )
    official = classification.setup(config)
    init = jax.jit(official.init_variables, compiler_options=loop._RUN_ONCE)
    variables = jax.device_get(init(jax.random.key_data(jax.random.key(1))))
    np.savez(path, **export_official_qkformer(variables, official.model))
    evaluated = classification.evaluate(official)
    direct = loop.evaluate_only(official, config.loop, official.mesh, variables, "direct.json", {})
    assert evaluated["source"] == path
    assert (evaluated["accuracy"], evaluated["loss"]) == (direct["accuracy"], direct["loss"])
