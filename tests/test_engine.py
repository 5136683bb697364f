"""A third task needs no change to the engine: a linear regression, written against the Task and Evaluator
protocols alone, trains, evaluates, checkpoints and resumes through the same Trainer and command line."""

import dataclasses
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from snnjax.checks import check, number
from snnjax.engine import flags
from snnjax.engine.config import LoopConfig
from snnjax.engine.evaluators import SumEvaluator
from snnjax.engine.optimizer import Optimizer
from snnjax.engine.sharding import make_mesh, replicate
from snnjax.settings import Settings, replace_paths, setting

WEIGHTS = np.array([1.0, -2.0, 0.5], np.float32)


@dataclasses.dataclass(frozen=True)
class RegressionConfig(Settings):
    loop: LoopConfig = LoopConfig(epochs=3, batch_size=16, eval_batch_size=64, progress=False)
    lr: float = setting(0.1, "SGD learning rate", accepts=number(0, low_open=True))


class RegressionTask:
    """y = x·w on 64 fixed points, 4 batches of 16 per epoch; the metric is the mean squared error."""

    best_metric = "neg_mse"
    summary_keys = ("mse",)
    eval_file = "eval.json"
    steps_per_epoch = 4

    def __init__(self, config: RegressionConfig):
        self.config, self.mesh = config, make_mesh(config.loop)
        x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
        self.data = replicate({"x": x, "y": x @ WEIGHTS}, self.mesh)
        self.model = nn.Dense(1)
        self.evaluators = (SumEvaluator(lambda: iter([self.data]), self.sums, self.summarize, self.mesh),)

    def init_variables(self, rng):
        return self.model.init(rng, jnp.zeros((1, 3)))

    def optimizer(self):
        return Optimizer(optax.sgd(self.config.lr), lambda epoch: self.config.lr)

    def train_batches(self, epoch, rng):
        for i in range(self.steps_per_epoch):
            yield {**self.data, "index": np.int32(i)}

    def train_loss(self, params, model_state, batch, rng):
        x, y = (jax.lax.dynamic_slice_in_dim(batch[k], batch["index"] * 16, 16) for k in ("x", "y"))
        loss = jnp.mean((self.model.apply({"params": params}, x)[:, 0] - y) ** 2)
        return loss, (model_state, {})

    def sums(self, variables, batch, rng):
        error = self.model.apply(variables, batch["x"])[:, 0] - batch["y"]
        return {"squared_error": jnp.sum(error**2), "count": jnp.float32(len(error))}

    def summarize(self, totals):
        mse = float(totals["squared_error"] / totals["count"])
        return {"mse": mse, "neg_mse": -mse}

    def load_variables(self, path):
        check(False, "init_from", path, "a checkpoint folder")


EXPERIMENT = flags.Experiment(
    prog="regression.py",
    description="A third task.",
    default=RegressionConfig(),
    setup=RegressionTask,
    workdir=lambda config: "unused",
    result_keys=("mse",),
)


def test_a_third_task_trains_resumes_and_evaluates_through_the_engine(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    results = flags.main(EXPERIMENT, ["--workdir", workdir, "--epochs", "2"])
    assert results["mse"] < 1.0 and results["best_epoch"] == 2 and results["config"]["lr"] == 0.1
    extended = flags.main(EXPERIMENT, ["--resume", workdir, "--extend", "--epochs", "3"])
    assert extended["mse"] < results["mse"] and extended["epochs"] == 3
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
    evaluated = flags.main(EXPERIMENT, ["--resume", workdir, "--eval_only"])
    assert evaluated["mse"] == extended["mse"] and evaluated["source"] == workdir
    assert "epoch 3: lr=0.1 train_loss=" in capsys.readouterr().out
    task = RegressionTask(replace_paths(RegressionConfig(), {"loop.workdir": workdir}))
    assert (
        task.evaluators[0](replicate(task.init_variables(jax.random.key(0)), task.mesh), jax.random.key(1))["mse"] > 1.0
    )
