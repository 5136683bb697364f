"""Detection on the generic loop: YOLOv5's loss trains, mAP under every rule, the EMA is what is
evaluated and saved, checkpoint/resume, results files, eval-only.

One tiny configuration for every test (spiking YOLOv5n, T = 2, 64×64 synthetic images, batch 4 with
gradients accumulated over 2 batches), so the train step and the detector compile once per process.
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import interrupt_and_resume

from snnjax.checkpoint import load_state
from snnjax.models.spiking import SpikingConfig
from snnjax.train import detection_task, loop
from snnjax.train.config import DetectionConfig, DetectionDataConfig, DetectorConfig, LoopConfig, SGDConfig
from snnjax.train.state import EMA, saved_variables, update_ema

RULE_KEYS = {"map50", "map50_95", "voc07_map50", "voc07_map50_95", "voc12_map50", "voc12_map50_95", "fitness"}


def tiny_config(workdir: str) -> DetectionConfig:
    """16 training images, batch 4 (4 steps/epoch), 2 epochs; warm-up over 2 batches, then 2 batches
    per update; 8 test images in one evaluation batch. The learning rate is large because at 64 px and
    ~3% firing the spiking YOLOv5n's gradients are ~30× smaller than the ANN's."""
    return DetectionConfig(
        loop=LoopConfig(workdir=workdir, epochs=2, batch_size=4, eval_batch_size=8, seed=0, progress=False),
        model=DetectorConfig(spiking=SpikingConfig(T=2, encoding="phase", neuron="learnable")),
        data=DetectionDataConfig(
            dataset="synthetic", img_size=64, synthetic_train=16, synthetic_test=8, synthetic_classes=3
        ),
        optim=SGDConfig(lr=1.0, nominal_batch_size=8, warmup_epochs=0, min_warmup_steps=2),
    )


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return detection_task.setup(tiny_config(str(tmp_path_factory.mktemp("run") / "a")))


@pytest.fixture(scope="module")
def finished(task):
    """The uninterrupted run: (workdir, results)."""
    return task.config.loop.workdir, detection_task.train(task)


def test_a_few_steps_lower_the_loss(task):
    programs = loop.programs(task, task.config.optim, task.config.loop.epochs, task.mesh, task.batch_size)
    rng = jax.random.key_data(jax.random.key(0))
    state = programs.init(rng)
    batch = next(task.train_batches(0, rng))
    losses = []
    for _ in range(10):
        state, metrics = programs.train_step(state, batch, task.data)
        losses.append(float(metrics["loss"]))
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


def test_results_hold_every_rule_and_the_metrics_files(finished, task):
    workdir, results = finished
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f) == results
    assert RULE_KEYS <= results.keys() and all(0.0 <= results[k] <= 1.0 for k in RULE_KEYS)
    assert results["fitness"] == pytest.approx(0.1 * results["map50"] + 0.9 * results["map50_95"])
    assert set(results["ap50_per_class"]) <= set(task.dataset.class_names)
    assert results["best_epoch"] in (1, 2) and results["epochs"] == 2 and results["params"] > 1_700_000
    rates = results["firing_rates"]
    assert "encoder" in rates and "model_2/m_0/cv1_lif" in rates and all(0 <= r <= 1 for r in rates.values())
    assert results["config"]["optim"]["nominal_batch_size"] == 8
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    expected = {"train_loss", "train_box", "train_obj", "train_cls", "eval_map50", "eval_voc07_map50", "lr"}
    assert expected <= records[-1].keys()
    assert records[-1]["eval_map50_95"] == results["map50_95"]


def test_evaluation_uses_the_ema_variables(finished, task):
    workdir, results = finished
    state, _ = load_state(workdir)
    ema = loop.evaluate_only(task, task.config.loop, task.mesh, saved_variables(state), "ema.json", {})
    raw = loop.evaluate_only(
        task, task.config.loop, task.mesh, {"params": state["params"], **state["model_state"]}, "raw.json", {}
    )
    assert ema["firing_rates"] == results["firing_rates"] and ema["map50_95"] == results["map50_95"]
    assert raw["firing_rates"] != results["firing_rates"]


def test_an_interrupted_and_resumed_run_ends_with_the_same_parameters(task, finished, tmp_path, monkeypatch):
    workdir = str(tmp_path / "b")
    resumed = interrupt_and_resume(task, workdir, finished[0], monkeypatch)
    assert resumed["map50_95"] == finished[1]["map50_95"]


def test_eval_only_reproduces_the_results_from_the_checkpoint(task, finished):
    workdir, results = finished
    evaluated = detection_task.evaluate(task)
    assert evaluated["map50_95"] == results["map50_95"] and evaluated["source"] == workdir
    assert os.path.exists(os.path.join(workdir, "eval.json"))


def test_init_from_loads_the_ema_and_rejects_another_model(task, finished):
    config = dataclasses.replace(task.config, init_from=finished[0])
    variables = detection_task.pretrained_variables(config)
    state, _ = load_state(finished[0])
    jax.tree_util.tree_map(np.testing.assert_array_equal, variables, saved_variables(state))
    spiking = dataclasses.replace(config.model.spiking, T=4)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, spiking=spiking))
    with pytest.raises(ValueError, match=r"init_from: .*model\.spiking\.T: 2 -> 4$"):
        detection_task.pretrained_variables(other)
