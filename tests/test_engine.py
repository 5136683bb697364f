"""The engine on a third task, a linear regression written against the Task and Evaluator protocols alone:
it trains, evaluates, checkpoints and resumes through the same Trainer and command line, and survives faults
(kills at each stage, damaged checkpoints, non-finite numbers, Ctrl-C, unwritable folders, full disks)."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from snnjax.checks import check, number
from snnjax.engine import compiler, flags
from snnjax.engine.checkpoint import CheckpointError, load_state
from snnjax.engine.compiler import compiler_options, mesh_options
from snnjax.engine.config import LoopConfig
from snnjax.engine.evaluators import SumEvaluator
from snnjax.engine.loop import NonFiniteError, Trainer
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

    def train_batches(self, epoch, rng, start=0):
        for i in range(start, self.steps_per_epoch):
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


def regression(workdir, **settings) -> RegressionTask:
    return RegressionTask(replace_paths(RegressionConfig(), {"loop.workdir": str(workdir), **settings}))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 3-epoch run: (workdir, results)."""
    workdir = tmp_path_factory.mktemp("reference")
    return workdir, Trainer(regression(workdir, **{"loop.epochs": 3})).train()


KILLED = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_engine import regression
    from snnjax.engine import rundir
    from snnjax.engine.loop import Trainer

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    task = regression({workdir!r}, **{{"loop.epochs": 3}})
    if {stage!r} == "step":  # in the second epoch, before its third step
        batches = task.train_batches
        task.train_batches = lambda epoch, rng, start=0: (
            die() if (epoch, i) == (1, 2) else batch for i, batch in enumerate(batches(epoch, rng, start)))
    elif {stage!r} == "checkpoint":  # epoch 2's checkpoint (step 8) in its temporary folder, not yet renamed
        from orbax.checkpoint._src.path import async_path
        rename = async_path.rename
        async def rename_or_die(src, dst):
            if dst.name == "8":
                die()
            return await rename(src, dst)
        async_path.rename = rename_or_die
    else:  # half of the metrics of epoch 2 written to the temporary file
        write = rundir.RunFolder.write_text
        def write_or_die(self, name, text):
            if name == rundir.METRICS and text.count("\\n") == 2:
                with open(self.path(name) + ".tmp", "w") as f:
                    f.write(text[: len(text) // 2])
                die()
            write(self, name, text)
        rundir.RunFolder.write_text = write_or_die
    Trainer(task).train()
""")


@pytest.mark.parametrize("stage", ["step", "checkpoint", "metrics"])
def test_a_run_killed_in_a_step_a_checkpoint_or_the_metrics_resumes_to_the_same_end(stage, reference, tmp_path):
    workdir = tmp_path / "run"
    script = KILLED.format(tests=os.path.dirname(os.path.abspath(__file__)), workdir=str(workdir), stage=stage)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not os.path.exists(workdir / "results.json")
    resumed = Trainer(regression(workdir, **{"loop.epochs": 3})).train()
    assert resumed["mse"] == reference[1]["mse"]
    jax.tree_util.tree_map(np.testing.assert_array_equal, load_state(workdir)[0], load_state(reference[0])[0])
    with open(workdir / "metrics.jsonl") as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
    assert not [p for p in os.listdir(workdir) + os.listdir(workdir / "checkpoints") if "tmp" in p]


def test_a_damaged_checkpoint_is_stepped_over_on_resume(reference, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(reference[0], workdir)
    os.remove(workdir / "results.json")
    state_files = [os.path.join(d, f) for d, _, names in os.walk(workdir / "checkpoints" / "12") for f in names]
    os.remove(next(p for p in state_files if p.endswith("manifest.ocdbt")))
    resumed = Trainer(regression(workdir, **{"loop.epochs": 3})).train()
    assert resumed["mse"] == reference[1]["mse"]
    assert "checkpoint 12 is damaged (unreadable" in capsys.readouterr().out
    assert os.path.isdir(workdir / "checkpoints_damaged" / "12")


def test_a_non_finite_loss_stops_the_run_and_nothing_non_finite_is_saved(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"^epoch (\d+): .*(not finite|non-finite).*; the last checkpoint is at"):
        Trainer(regression(workdir, lr=1000.0, **{"loop.epochs": 10})).train()
    assert not os.path.exists(workdir / "results.json")
    with open(workdir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]  # strict JSON: no NaN
    assert records and all(np.isfinite(r["train_loss"]) for r in records)
    state, _ = load_state(str(workdir))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree_util.tree_leaves(state))


def test_ctrl_c_says_where_the_run_stopped_and_how_to_resume(tmp_path, capsys, monkeypatch):
    workdir = str(tmp_path / "run")
    batches = RegressionTask.train_batches

    def interrupt_in_the_second_epoch(self, epoch, rng, start=0):
        if epoch == 1:
            raise KeyboardInterrupt
        return batches(self, epoch, rng, start)

    monkeypatch.setattr(RegressionTask, "train_batches", interrupt_in_the_second_epoch)
    with pytest.raises(SystemExit) as exit_info:
        flags.main(EXPERIMENT, ["--workdir", workdir, "--epochs", "3"])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err.strip() == (
        f"regression.py: interrupted in epoch 2 of 3; the last checkpoint is at the end of epoch 1 "
        f"({workdir}/checkpoints/4); "
        f"continue with --resume {workdir}"
    )
    monkeypatch.undo()
    assert flags.main(EXPERIMENT, ["--resume", workdir])["epochs"] == 3


def test_an_unwritable_workdir_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        flags.main(EXPERIMENT, ["--workdir", str(tmp_path / "file")])
    assert str(exit_info.value.code).startswith(f"regression.py: error: {tmp_path / 'file'}/config.json: cannot be")


FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    sys.path.insert(0, {tests!r})
    from test_engine import EXPERIMENT
    from snnjax.engine import flags

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
    flags.main(EXPERIMENT, ["--workdir", {workdir!r}])
""")


def test_a_failed_write_ends_the_process_at_once_with_one_line(tmp_path):
    script = FULL_DISK.format(tests=os.path.dirname(os.path.abspath(__file__)), workdir=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"regression.py: error: {tmp_path}/run/config.json: cannot")


def test_a_failed_checkpoint_save_is_one_line_and_keeps_the_earlier_checkpoints(tmp_path, monkeypatch, capsys):
    from snnjax.engine.checkpoint import Checkpoints

    save = Checkpoints.save

    def full_disk_at_epoch_2(self, step, state, **kwargs):
        if step == 8:
            raise CheckpointError(f"saving checkpoint 8 in {self.directory} failed: [Errno 28] No space left")
        save(self, step, state, **kwargs)

    monkeypatch.setattr(Checkpoints, "save", full_disk_at_epoch_2)
    with pytest.raises(SystemExit) as exit_info:
        flags.main(EXPERIMENT, ["--workdir", str(tmp_path / "run"), "--epochs", "3"])
    assert "error: saving checkpoint 8 in" in str(exit_info.value.code) and "No space left" in str(exit_info.value.code)
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["4"]


def test_history_keeps_numbers_and_flat_maps_of_numbers_only():
    from snnjax.engine.loop import is_history_value

    assert all(map(is_history_value, (0.5, 3, None, "text", {"layer": 0.1, "other": 2})))
    assert not any(map(is_history_value, ({"cls": [0.1, 0.2]}, [1, 2], {"layer": {"macs": 1.0}})))


def test_cpu_programs_run_convolutions_with_eigen_and_other_platforms_get_no_options():
    """With the CPU options no convolution runs in a YNNPACK fusion and the numbers agree with XLA's
    default kernels; a GPU gets no options."""
    assert compiler_options("gpu") == {} and compiler_options("tpu") == {}
    assert mesh_options(make_mesh(LoopConfig())) == compiler_options("cpu")
    x = jax.random.normal(jax.random.key(6), (4, 9, 9, 32))
    w = jax.random.normal(jax.random.key(7), (3, 3, 32, 32)) * 0.1

    def conv(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    eigen = jax.jit(conv, compiler_options=compiler_options("cpu")).lower(x, w).compile()
    assert "__ynn_fusion" not in eigen.as_text() and "convolution(" in eigen.as_text()
    np.testing.assert_allclose(eigen(x, w), jax.jit(conv)(x, w), rtol=1e-4, atol=1e-4)


def test_the_train_and_eval_programs_compile_with_the_options_of_their_mesh(tmp_path, monkeypatch):
    """Programs jitted by ``jit_over`` compile with what ``mesh_options`` gives, the init program with its
    own options on top (an option XLA rejects shows that it reached the compiler)."""
    bad = {"xla_cpu_experimental_ynn_fusion_type": "NOT_A_LIBRARY_TYPE"}
    task = regression(tmp_path)
    trainer = Trainer(task)
    state = trainer.init(jax.random.key_data(jax.random.key(0)))
    monkeypatch.setattr(compiler, "mesh_options", lambda mesh: bad)
    with pytest.raises(Exception, match="NOT_A_LIBRARY_TYPE"):
        Trainer(regression(tmp_path / "other")).init(jax.random.key_data(jax.random.key(0)))
    trainer = Trainer(task)
    with pytest.raises(Exception, match="NOT_A_LIBRARY_TYPE"):
        trainer.train_step(state, next(task.train_batches(0, None)))
    task = regression(tmp_path / "third")
    with pytest.raises(Exception, match="NOT_A_LIBRARY_TYPE"):
        task.evaluators[0](replicate(task.init_variables(jax.random.key(0)), task.mesh), jax.random.key(1))
