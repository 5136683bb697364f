"""The engine on the classification task: learning, data parallelism, checkpoint/resume/extend, results
files, eval-only, and the numbers of the run from before the engine was split from the tasks.

One tiny configuration for every test (QKFormer-2-32, T = 2, 8×8 synthetic images), so the train and
eval steps compile once per module (the module's Trainer holds them).
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from conftest import interrupt_and_resume, repeat_first_batch

from snnjax.engine import programs
from snnjax.engine.checkpoint import load_state
from snnjax.engine.config import LoopConfig
from snnjax.engine.loop import RUN_ONCE, Trainer, run_keys
from snnjax.engine.rundir import ConfigMismatchError
from snnjax.engine.sharding import batch_sharding, global_batch, replicate
from snnjax.models.convert import export_official_qkformer
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import replace_paths
from snnjax.tasks import classification
from snnjax.tasks.classification.config import ClassificationConfig, DataConfig, ModelConfig
from snnjax.tasks.classification.optimizer import OptimConfig


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
def trainer(tmp_path_factory):
    return Trainer(classification.setup(tiny_config(str(tmp_path_factory.mktemp("run") / "a"))))


@pytest.fixture(scope="module")
def finished(trainer):
    """The uninterrupted run: (workdir, results)."""
    return trainer.loop.workdir, trainer.train()


def test_a_few_steps_lower_the_loss(trainer):
    _, _, losses = repeat_first_batch(trainer, 8)
    assert np.mean(losses[-2:]) < losses[0] - 0.05, losses


TWO_DEVICES = textwrap.dedent("""
    import sys
    import jax, numpy as np
    sys.path.insert(0, {tests!r})
    from test_classification_task import tiny_config
    from snnjax.engine.loop import Trainer
    from snnjax.engine.sharding import replicate
    from snnjax.tasks import classification

    assert jax.device_count() == 2, jax.devices()
    trainer = Trainer(classification.setup(tiny_config({workdir!r}, num_devices=2)))
    rng = jax.random.key_data(jax.random.key(0))
    treedef = jax.tree_util.tree_structure(jax.eval_shape(trainer.init_state, rng))
    with np.load({initial!r}) as f:
        initial = jax.tree_util.tree_unflatten(treedef, [f[f"arr_{{i}}"] for i in range(len(f.files))])
    batch = next(trainer.task.train_batches(0, rng))
    state, metrics = trainer.train_step(replicate(initial, trainer.task.mesh), batch)
    assert len(state.params["head"]["kernel"].sharding.device_set) == 2
    np.savez({result!r}, *jax.tree_util.tree_leaves(jax.device_get((state.params, state.model_state, metrics))))
""")


def test_two_simulated_devices_take_the_same_step_as_one(trainer, tmp_path):
    """XLA_FLAGS must be set before JAX starts, so the 2-device step runs in a subprocess. One step is
    compared: it agrees to float32 round-off (6e-8 here), but a spiking network under Adam amplifies
    round-off chaotically over later steps (spikes at threshold flip), so longer runs agree loosely."""
    rng = jax.random.key_data(jax.random.key(0))
    initial = jax.device_get(trainer.init(rng))
    np.savez(tmp_path / "initial.npz", *jax.tree_util.tree_leaves(initial))
    batch = next(trainer.task.train_batches(0, rng))
    state, metrics = trainer.train_step(replicate(initial, trainer.task.mesh), batch)
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
    assert results["config"]["model"]["name"] == "2-32" and results["config"]["loop"]["workdir"] == workdir
    rates = results["firing_rates"]
    assert "encoder" in rates and "stage1_0/tssa/q_lif" in rates and all(0 <= r <= 1 for r in rates.values())
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train_loss", "train_accuracy", "eval_accuracy", "lr", "images_per_s"} <= records[-1].keys()
    assert records[-1]["eval_accuracy"] == results["accuracy"]


def test_the_same_seed_gives_the_numbers_of_the_run_before_the_engine_split(finished):
    """Pinned from this configuration's run at commit 6047564, before the engine and the tasks were split
    apart (the train step then took the dataset as a separate argument): the same seed gives the same
    losses to float32 round-off."""
    workdir, results = finished
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
    assert last["train_loss"] == pytest.approx(2.307020425796509, rel=1e-6)
    assert results["loss"] == pytest.approx(2.302593231201172, rel=1e-6)


def test_an_interrupted_and_resumed_run_ends_with_the_same_parameters(trainer, finished, tmp_path, monkeypatch):
    workdir = str(tmp_path / "b")
    resumed = interrupt_and_resume(trainer, workdir, finished[0], monkeypatch)
    assert resumed["accuracy"] == finished[1]["accuracy"]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2]


def test_resuming_with_a_different_config_names_the_settings(trainer, finished, monkeypatch):
    other = replace_paths(trainer.task.config, {"model.spiking.T": 4, "optim.lr": 1e-4, "loop.progress": True})
    monkeypatch.setattr(trainer.task, "config", other)
    with pytest.raises(ConfigMismatchError, match=r"differing settings: model\.spiking\.T: 2 -> 4; optim\.lr"):
        trainer.train()


def test_a_finished_run_is_not_trained_again(trainer, finished):
    workdir, results = finished
    stamp = os.path.getmtime(os.path.join(workdir, "results.json"))
    assert trainer.train() == results
    assert os.path.getmtime(os.path.join(workdir, "results.json")) == stamp


def test_an_extended_run_trains_on_from_its_last_epoch_and_keeps_the_earlier_results(
    trainer, finished, tmp_path, monkeypatch
):
    workdir = str(tmp_path / "extended")
    shutil.copytree(finished[0], workdir)
    extended = {"loop.epochs": 3, "loop.extended_from": (2,), "loop.workdir": workdir}
    monkeypatch.setattr(trainer.task, "config", replace_paths(trainer.task.config, extended))
    results = Trainer(trainer.task).train()
    with open(os.path.join(workdir, "results_2epochs.json")) as f:
        assert json.load(f) == finished[1]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["loop"]["extended_from"] == [2]
    assert results["epochs"] == 3 and int(load_state(workdir)[0]["step"]) == 3 * trainer.task.steps_per_epoch


def test_global_batch_splits_process_local_data_over_the_mesh(trainer):
    batch = global_batch({"x": np.arange(8.0)}, trainer.task.mesh)
    np.testing.assert_array_equal(batch["x"], np.arange(8.0))
    assert batch["x"].sharding == batch_sharding(trainer.task.mesh)


def test_eval_only_from_the_checkpoint_reproduces_the_accuracy(trainer, finished):
    workdir, results = finished
    evaluated = trainer.evaluate_only()
    assert evaluated["accuracy"] == results["accuracy"] and evaluated["source"] == workdir
    assert evaluated["loss"] == pytest.approx(results["loss"], rel=1e-6)
    assert os.path.exists(os.path.join(workdir, "eval.json"))


def test_init_from_a_checkpoint_loads_its_variables_and_rejects_another_model(trainer, finished, monkeypatch):
    workdir, _ = finished
    variables = trainer.load_variables(workdir)
    state, _ = load_state(workdir)
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables["params"], state["params"])
    assert variables.keys() == {"params", "batch_stats"}
    monkeypatch.setattr(trainer.task, "config", replace_paths(trainer.task.config, {"model.spiking.T": 4}))
    with pytest.raises(ValueError, match=r"^init_from: .*model\.spiking\.T: 2 -> 4$"):
        trainer.load_variables(workdir)


def test_eval_only_from_official_weights_matches_the_same_variables(tmp_path):
    config = replace_paths(tiny_config(str(tmp_path / "official")), {"model.spiking": SpikingConfig(T=2)})
    task = classification.setup(config)
    variables = jax.device_get(jax.jit(task.init_variables, compiler_options=RUN_ONCE)(run_keys(1)[0]))
    path = str(tmp_path / "official.npz")
    np.savez(path, **export_official_qkformer(variables, task.model))
    task.config = replace_paths(config, {"loop.eval_only": True, "loop.init_from": path})
    trainer = Trainer(task)
    evaluated = trainer.evaluate_only()
    direct = trainer.evaluate(replicate(variables, task.mesh), run_keys(config.loop.seed)[1])
    assert evaluated["source"] == path
    assert (evaluated["accuracy"], evaluated["loss"]) == (direct["accuracy"], direct["loss"])


def test_evaluation_numbers_do_not_depend_on_the_eval_batch_size(trainer, finished):
    """40 test images: batches of 32 + 8 real and 24 padding rows, or 24 + 16 real and 8 padding rows."""
    variables = replicate(trainer.load_variables(finished[0]), trainer.task.mesh)
    key = run_keys(trainer.loop.seed)[1]
    other = Trainer(classification.setup(replace_paths(trainer.task.config, {"loop.eval_batch_size": 24})))
    a, b = trainer.evaluate(variables, key), other.evaluate(variables, key)
    assert a["accuracy"] == b["accuracy"] and a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    assert a["firing_rates"].keys() == b["firing_rates"].keys()
    for name, rate in a["firing_rates"].items():
        assert rate == pytest.approx(b["firing_rates"][name], rel=1e-5, abs=1e-9), name


def test_runs_at_other_seeds_share_the_programs_which_hold_no_seed(tmp_path):
    """The seeds of one setting share their programs (snnjax.engine.programs); built apart, the programs of
    two seeds lower to the same HLO, so sharing cannot change a result."""

    def setup(seed, **changes):
        config = replace_paths(tiny_config(str(tmp_path / str(seed))), {"loop.seed": seed, "data.synthetic_seed": 0})
        return Trainer(classification.setup(replace_paths(config, changes)))

    a, b = setup(1), setup(2)
    assert a.train_step is b.train_step and a.init is b.init
    assert a.task.evaluators[0].step is b.task.evaluators[0].step
    assert setup(1, **{"optim.lr": 1e-3}).train_step is not a.train_step  # another setting: its own programs
    programs.forget()
    c = setup(3)
    assert c.train_step is not a.train_step
    rng = run_keys(1)[0]

    def hlo(trainer):
        return trainer.train_step.lower(trainer.abstract_state(rng), next(trainer.task.train_batches(0, rng))).as_text()

    assert hlo(a) == hlo(c)
