"""Detection on the engine: YOLOv5's loss trains, mAP under every rule, the EMA is what is evaluated and
saved, checkpoint/resume, results files, eval-only, and the numbers of the run from before the engine was
split from the tasks.

One tiny configuration for every test (spiking YOLOv5n, T = 2, 64×64 synthetic images, batch 4 with
gradients accumulated over 2 batches), so the train step and the detector compile once per module.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import interrupt_and_resume, repeat_first_batch

from snnjax.engine.checkpoint import load_state
from snnjax.engine.config import LoopConfig
from snnjax.engine.loop import Trainer, run_keys
from snnjax.engine.sharding import replicate
from snnjax.engine.state import EMA, saved_variables, update_ema
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import replace_paths
from snnjax.tasks import detection
from snnjax.tasks.detection.config import DataConfig, DetectionConfig, DetectorConfig
from snnjax.tasks.detection.evaluator import DetectionEvaluator
from snnjax.tasks.detection.optimizer import SGDConfig

RULE_KEYS = {"map50", "map50_95", "voc07_map50", "voc07_map50_95", "voc12_map50", "voc12_map50_95", "fitness"}


def tiny_config(workdir: str) -> DetectionConfig:
    """16 training images, batch 4 (4 steps/epoch), 2 epochs; warm-up over 2 batches, then 2 batches
    per update; 8 test images in one evaluation batch. The learning rate is large because at 64 px and
    ~3% firing the spiking YOLOv5n's gradients are ~30× smaller than the ANN's."""
    return DetectionConfig(
        loop=LoopConfig(workdir=workdir, epochs=2, batch_size=4, eval_batch_size=8, seed=0, progress=False),
        model=DetectorConfig(spiking=SpikingConfig(T=2, encoding="phase", neuron="learnable")),
        data=DataConfig(dataset="synthetic", img_size=64, synthetic_train=16, synthetic_test=8, synthetic_classes=3),
        optim=SGDConfig(lr=1.0, nominal_batch_size=8, warmup_epochs=0, min_warmup_steps=2),
    )


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    return Trainer(detection.setup(tiny_config(str(tmp_path_factory.mktemp("run") / "a"))))


@pytest.fixture(scope="module")
def finished(trainer):
    """The uninterrupted run: (workdir, results)."""
    return trainer.loop.workdir, trainer.train()


def test_a_few_steps_lower_the_loss(trainer):
    state, metrics, losses = repeat_first_batch(trainer, 10)
    assert {"box", "obj", "cls"} <= metrics.keys()
    assert np.mean(losses[-2:]) < 0.99 * losses[0], losses
    assert int(state.ema.updates) == 5  # accumulate(1) = round(1.5) = 2: updates at batches 0, 2, 4, 6, 8


def test_ema_averages_floating_variables_after_each_update():
    ema = EMA(jnp.int32(0), {"params": {"w": jnp.zeros(2)}, "counts": {"n": jnp.int32(1)}})
    new = {"params": {"w": jnp.ones(2)}, "counts": {"n": jnp.int32(5)}}
    decay = lambda updates: 0.9999 * (1 - jnp.exp(-updates / 2000.0))  # noqa: E731
    skipped = update_ema(ema, new, jnp.bool_(False), decay)
    np.testing.assert_array_equal(skipped.variables["params"]["w"], 0.0)
    assert int(skipped.updates) == 0
    stepped = update_ema(ema, new, jnp.bool_(True), decay)
    np.testing.assert_allclose(stepped.variables["params"]["w"], 1 - float(decay(1.0)), rtol=1e-6)
    assert int(stepped.updates) == 1 and int(stepped.variables["counts"]["n"]) == 5


def test_results_hold_every_rule_and_the_metrics_files(finished, trainer):
    workdir, results = finished
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f) == results
    assert RULE_KEYS <= results.keys() and all(0.0 <= results[k] <= 1.0 for k in RULE_KEYS)
    assert results["fitness"] == pytest.approx(0.1 * results["map50"] + 0.9 * results["map50_95"])
    assert set(results["ap50_per_class"]) <= set(trainer.task.dataset.class_names)
    assert results["best_epoch"] in (1, 2) and results["epochs"] == 2 and results["params"] > 1_700_000
    rates = results["firing_rates"]
    assert "encoder" in rates and "model_2/m_0/cv1_lif" in rates and all(0 <= r <= 1 for r in rates.values())
    assert results["config"]["optim"]["nominal_batch_size"] == 8
    assert results["config"]["augment"]["fliplr"] == 0.5 and results["config"]["loss"]["balance"] == [4.0, 1.0, 0.4]
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    expected = {"train_loss", "train_box", "train_obj", "train_cls", "eval_map50", "eval_voc07_map50", "lr"}
    assert expected <= records[-1].keys()
    assert records[-1]["eval_map50_95"] == results["map50_95"]


def test_the_same_seed_gives_the_numbers_of_the_run_before_the_engine_split(finished):
    """Pinned from this configuration's run at commit 6047564, before the engine and the tasks were split
    apart: the same seed gives the same loss and mAP to float32 round-off. While the LIF's backward pass was
    unrolled, Eigen's convolutions (snnjax.engine.compiler) moved the loss to 0.46474; since it loops over
    time on a CPU (snnjax.neurons), both kernel sets give the pinned value again."""
    workdir, results = finished
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        last = [json.loads(line) for line in f][-1]
    assert last["train_loss"] == pytest.approx(0.4642869234085083, rel=1e-6)
    assert results["map50_95"] == pytest.approx(0.0011599239529881387, rel=1e-6)


def test_evaluation_uses_the_ema_variables(finished, trainer):
    workdir, results = finished
    state, _ = load_state(workdir)
    key = run_keys(trainer.loop.seed)[1]
    ema = trainer.evaluate(replicate(saved_variables(state), trainer.task.mesh), key)
    raw = trainer.evaluate(replicate({"params": state["params"], **state["model_state"]}, trainer.task.mesh), key)
    assert ema["firing_rates"] == results["firing_rates"] and ema["map50_95"] == results["map50_95"]
    assert raw["firing_rates"] != results["firing_rates"]


def test_an_interrupted_and_resumed_run_ends_with_the_same_parameters(trainer, finished, tmp_path, monkeypatch):
    workdir = str(tmp_path / "b")
    resumed = interrupt_and_resume(trainer, workdir, finished[0], monkeypatch)
    assert resumed["map50_95"] == finished[1]["map50_95"]


def test_eval_only_reproduces_the_results_from_the_checkpoint(trainer, finished):
    workdir, results = finished
    evaluated = trainer.evaluate_only()
    assert evaluated["map50_95"] == results["map50_95"] and evaluated["source"] == workdir
    assert os.path.exists(os.path.join(workdir, "eval.json"))


def test_init_from_loads_the_ema_and_rejects_another_model_or_a_file(trainer, finished, monkeypatch):
    variables = trainer.load_variables(finished[0])
    state, _ = load_state(finished[0])
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables, saved_variables(state))
    with pytest.raises(ValueError, match=r"^init_from: got '.*config.json'; accepted: an orbax checkpoint folder"):
        trainer.load_variables(os.path.join(finished[0], "config.json"))
    monkeypatch.setattr(trainer.task, "config", replace_paths(trainer.task.config, {"model.spiking.T": 4}))
    with pytest.raises(ValueError, match=r"^init_from: .*model\.spiking\.T: 2 -> 4$"):
        trainer.load_variables(finished[0])


def test_firing_rates_do_not_depend_on_the_eval_batch_size(trainer, finished):
    """8 test images in one batch, or in batches of 3 + 3 + 2 real images and one padding row."""
    variables = replicate(trainer.load_variables(finished[0]), trainer.task.mesh)
    key = run_keys(trainer.loop.seed)[1]
    task = trainer.task
    evaluator = DetectionEvaluator(task.model, task.dataset, task.mesh, batch_size=3)
    a, b = trainer.evaluate(variables, key), evaluator(variables, key)
    assert a["map50_95"] == pytest.approx(b["map50_95"], rel=1e-6)
    for name, rate in a["firing_rates"].items():
        assert rate == pytest.approx(b["firing_rates"][name], rel=1e-5, abs=1e-9), name
