"""One training loop for every task.

A :class:`Trainer` compiles a task's programs once: the state's initialisation and the pure, jitted,
state-donating ``train_step(state, batch) -> (state, metrics)``, data-parallel over the task's mesh
(parameters replicated, batches split over the ``"data"`` axis, gradient and BatchNorm reductions
inserted by XLA). :meth:`Trainer.train` runs, checkpoints and resumes the run in
``config.loop.workdir`` (``snnjax.engine.rundir`` lists its files); :meth:`Trainer.evaluate` runs the
task's evaluators on variables.

Optimizers that accumulate gradients (``optax.MultiSteps``) update the parameters every few steps;
when the task's optimizer has an EMA decay, the state keeps an EMA of the variables, updated after
each update, which evaluation, the checkpoints' metrics and ``results.json`` use.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import optax

from snnjax.checks import check
from snnjax.engine.checkpoint import Checkpoints, load_state
from snnjax.engine.compiler import jit_over
from snnjax.engine.optimizer import Optimizer, updated
from snnjax.engine.preemption import Preempted, Preemption
from snnjax.engine.programs import shared
from snnjax.engine.rundir import CHECKPOINTS, RESULTS, TENSORBOARD, RunFolder, check_processes
from snnjax.engine.scalars import ScalarLog
from snnjax.engine.sharding import barrier, is_main, needs_sync, replicate, replicated
from snnjax.engine.state import TrainState, count_params, create_train_state, saved_variables, update_ema
from snnjax.engine.task import Task
from snnjax.settings import differences, flatten, result_neutral, to_dict

FINITE = "finite"  # the train step's flag: its loss and gradients were finite
# Init runs once: skipping XLA's backend optimisations cuts its CPU compile time ~10x (QKFormer-3-32).
RUN_ONCE = {"xla_backend_optimization_level": 0}
_EVAL_STREAM = 2**31 - 1  # folded into the run key for evaluation randomness (poisson, shuffle_time)


def say(message: str) -> None:
    """Prints ``message`` on process 0."""
    if is_main():
        print(message, flush=True)


def is_history_value(value: Any) -> bool:
    """Whether an evaluation metric goes into the per-epoch ``metrics.jsonl``: numbers, text, None and flat
    maps of numbers (per-layer firing rates, per-class AP). Larger structures (curves, per-layer tables)
    are kept in ``results.json`` only, so the history stays small over hundreds of epochs."""
    if isinstance(value, dict):
        return all(isinstance(v, int | float) for v in value.values())
    return value is None or isinstance(value, int | float | str)


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """The run's base key (raw uint32, storable in the state) and its evaluation key."""
    rng = jax.random.key_data(jax.random.key(seed))
    return rng, jax.random.fold_in(rng, _EVAL_STREAM)


def make_train_step(task: Task, optimizer: Optimizer):
    """The jitted, state-donating ``train_step(state, batch) -> (state, metrics)``; with an EMA decay
    the state's EMA is updated after each optimizer update. ``metrics[FINITE]`` says whether the step's
    loss and gradients were finite; the host stops the run at the first that was not, before anything of
    its epoch is saved. (Selecting the old state inside the step instead changed XLA's fusion, and with
    it the float results of every healthy step.)"""

    def train_step(state: TrainState, batch):
        rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            return task.train_loss(params, state.model_state, batch, rng)

        (loss, (model_state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = optimizer.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state)
        if state.ema is not None:
            ema = update_ema(state.ema, new_state.variables, updated(opt_state), optimizer.ema_decay)
            new_state = new_state.replace(ema=ema)
        finite = jnp.all(
            jnp.stack([jnp.isfinite(loss)] + [jnp.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads)])
        )
        return new_state, {"loss": loss, **metrics, FINITE: finite}

    return jit_over(task.mesh, train_step, donate_argnums=0)


class NonFiniteError(ArithmeticError):
    """A train step's loss or gradients, or an evaluation's metrics, were NaN or infinite."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says where the run stopped and how to resume it."""


class EpochLog:
    """Host-side running means of an epoch's step metrics, fed one step late so the host never waits for
    the step it just dispatched; times throughput from the end of the first step (no compile time).
    ``first_step``: the train steps before the epoch's first; ``progress``: the sums and step count of
    steps taken before a resumption inside the epoch (:meth:`progress`)."""

    def __init__(self, bar, batch_size: int, log_every: int, first_step: int = 0, progress: dict | None = None):
        self.bar, self.batch_size, self.log_every, self.first_step = bar, batch_size, log_every, first_step
        self.sums: dict[str, float] = dict(progress["sums"]) if progress else {}
        self.steps = progress["steps"] if progress else 0
        self.resumed_steps = self.steps
        self.start = None
        self.stopped_before: int | None = None  # the train step a preemption stopped the epoch before

    def record(self, metrics: dict) -> None:
        """Adds one step's metrics; raises :class:`NonFiniteError` naming the step when they are not finite."""
        metrics = jax.device_get(metrics)
        if not metrics.pop(FINITE):
            step = self.first_step + self.steps + 1
            raise NonFiniteError(f"the loss or the gradients of train step {step} are not finite")
        if self.start is None:
            self.start = time.perf_counter()
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.steps += 1
        self.bar.update(1)
        if self.steps % self.log_every == 0:
            shown = {k: f"{v:.4g}" for k, v in self.means().items()}
            self.bar.set_postfix({**shown, "img/s": f"{self.images_per_second():.0f}"}, refresh=False)

    def means(self) -> dict[str, float]:
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}

    def images_per_second(self) -> float | None:
        """Images per second after this session's first step (None when no time has passed)."""
        elapsed = time.perf_counter() - self.start if self.start is not None else 0.0
        return (self.steps - self.resumed_steps - 1) * self.batch_size / elapsed if elapsed > 0 else None

    def progress(self) -> dict:
        """What a checkpoint inside the epoch keeps of the log: the metric sums and their step count."""
        return {"sums": self.sums, "steps": self.steps}

    def record_line(self) -> dict:
        """The epoch's ``train_*`` means and its throughput."""
        return {**{f"train_{k}": v for k, v in self.means().items()}, "images_per_s": self.images_per_second()}


def describe_step(step: int, per_epoch: int) -> str:
    """A checkpoint's train step in words: ``the end of epoch E`` or ``train step S (inside epoch E)``."""
    epoch, within = divmod(step, per_epoch)
    return f"the end of epoch {epoch}" if within == 0 else f"train step {step} (inside epoch {epoch + 1})"


def last_checkpoint(checkpoints: Checkpoints, per_epoch: int) -> str:
    """Where a stopped run can continue from, in words."""
    step = checkpoints.latest_step()
    if step is None:
        return "no checkpoint was saved yet"
    return f"the last checkpoint is at {describe_step(step, per_epoch)} ({checkpoints.directory}/{step})"


def summary_line(record: dict, eval_keys) -> str:
    """``epoch N: lr=... train_*=... eval_<key>=... images_per_s=... epoch_time_s=...``."""
    keys = [k for k in record if k.startswith("train_")]
    keys += [f"eval_{k}" for k in eval_keys] + ["images_per_s", "epoch_time_s"]
    parts = [f"{k}={record[k]:.4g}" for k in keys if isinstance(record.get(k), int | float)]
    return f"epoch {record['epoch']}: lr={record['lr']:.3g} " + " ".join(parts)


class Trainer:
    """A task's compiled programs, and the runs that use them (repeated runs share the compilations, and so
    do the trainers of tasks with the same ``program_key``: :mod:`snnjax.engine.programs`)."""

    def __init__(self, task: Task):
        self.task = task
        self.optimizer = task.optimizer()
        self.program_key = key = getattr(task, "program_key", None)
        self.init = shared(
            key,
            "init",
            lambda: jit_over(task.mesh, self.init_state, RUN_ONCE),
        )
        self.train_step = shared(key, "train_step", lambda: make_train_step(task, self.optimizer))

    @property
    def loop(self):
        """The task's loop settings (``config.loop``)."""
        return self.task.config.loop

    def init_state(self, rng: jax.Array) -> TrainState:
        """A fresh train state (pure; :attr:`init` is its jitted, replicated version)."""
        variables = self.task.init_variables(rng)
        return create_train_state(variables, self.optimizer.tx, rng, ema=self.optimizer.ema_decay is not None)

    def abstract_state(self, rng: jax.Array) -> Any:
        """Shapes, dtypes and shardings of the train state, without compiling anything."""
        sharding = replicated(self.task.mesh)

        def build():
            shapes = jax.eval_shape(self.init_state, rng)
            return jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)

        return shared(self.program_key, "abstract_state", build)

    def evaluate(self, variables: dict, rng: jax.Array) -> dict:
        """The metrics of every evaluator of the task on replicated ``variables``, merged. Raises
        :class:`NonFiniteError` naming any metric that is NaN or infinite."""
        metrics: dict = {}
        for evaluator in self.task.evaluators:
            result = evaluator(variables, rng)
            check(not metrics.keys() & result.keys(), "evaluators", sorted(result), "disjoint metric names")
            metrics.update(result)
        bad = [k for k, v in flatten(metrics).items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise NonFiniteError(f"the evaluation gave non-finite {', '.join(bad)}")
        return metrics

    def train_epoch(
        self,
        state: TrainState,
        epoch: int,
        *,
        start: int = 0,
        progress: dict | None = None,
        preemption: Preemption | None = None,
    ) -> tuple[TrainState, EpochLog]:
        """Runs steps ``start, ...`` of an epoch (``progress``: the log of the steps before ``start``), or
        until ``preemption`` is reached (the log's ``stopped_before`` then names the step); returns the
        new state and the epoch's log."""
        from tqdm.auto import tqdm  # only the training loop needs it (benchmarks run without it)

        loop, task = self.loop, self.task
        show = loop.progress and is_main()
        bar = tqdm(
            total=task.steps_per_epoch,
            initial=start,
            desc=f"epoch {epoch + 1}/{loop.epochs}",
            leave=False,
            disable=not show,
        )
        step = epoch * task.steps_per_epoch + start
        log = EpochLog(bar, loop.batch_size, loop.log_every, epoch * task.steps_per_epoch, progress)
        pending = None
        for batch in task.train_batches(epoch, jax.random.fold_in(state.rng, epoch), start):
            if preemption is not None and preemption.reached(step):
                log.stopped_before = step
                break
            state, metrics = self.train_step(state, batch)
            step += 1
            if needs_sync(task.mesh):
                jax.block_until_ready(metrics)
            if pending is not None:
                log.record(pending)
            pending = metrics
        if pending is not None:
            log.record(pending)
        bar.close()
        return state, log

    def train(self, workdir: str | None = None) -> dict:
        """Trains, resumes, extends or reports the finished run in ``workdir`` (default: the config's);
        returns the contents of ``results.json``. Checkpoints are named by the train steps taken: one after
        each epoch, and one wherever SIGTERM stops the run (:class:`Preempted`), which resumes mid-epoch."""
        task, loop = self.task, self.loop
        workdir = workdir or loop.workdir
        check(workdir is not None, "workdir", workdir, "a run folder (config.loop.workdir, or train(workdir))")
        config = to_dict(task.config)
        config["loop"]["workdir"] = workdir
        folder = RunFolder(workdir)
        ignored = result_neutral(type(task.config))
        check_processes(folder, config, ignored)  # first: the processes must share the folder and settings
        folder.check_config(config, ignored)
        if hasattr(task, "model_info"):
            folder.save_model_info(task.model_info())
        barrier("snnjax: run folder checked")  # process 0 may have just moved results.json aside (--extend)
        finished = folder.read_json(RESULTS)
        if finished is not None:
            say(f"run already finished: {folder.path(RESULTS)} (--resume {workdir} --extend --epochs N trains further)")
            return finished
        started = time.perf_counter()
        rng, eval_rng = run_keys(loop.seed)
        per_epoch = task.steps_per_epoch
        with (
            Checkpoints(folder.path(CHECKPOINTS), keep=loop.keep, best_metric=task.best_metric) as checkpoints,
            Preemption() as preemption,
            ScalarLog(folder.path(TENSORBOARD) if loop.tensorboard else None) as scalar_log,
        ):
            state, start_step, progress = self._initial_state(checkpoints, rng)
            start_epoch, skip = divmod(start_step, per_epoch)
            history = folder.history(start_epoch)
            eval_metrics, epoch = None, start_epoch
            try:
                for epoch in range(start_epoch, loop.epochs):
                    epoch_start = time.perf_counter()
                    first, progress = (skip, progress) if epoch == start_epoch else (0, None)
                    state, log = self.train_epoch(state, epoch, start=first, progress=progress, preemption=preemption)
                    if log.stopped_before is not None:
                        self._save_and_stop(checkpoints, log, state, config, workdir)
                    eval_metrics = None
                    if (epoch + 1) % loop.eval_every == 0 or epoch + 1 == loop.epochs:
                        eval_metrics = self.evaluate(state.eval_variables, eval_rng)
                    record = {
                        "epoch": epoch + 1,
                        "step": (epoch + 1) * per_epoch,
                        "lr": float(self.optimizer.learning_rate(epoch)),
                        **log.record_line(),
                        "epoch_time_s": time.perf_counter() - epoch_start,
                        **{f"eval_{k}": v for k, v in (eval_metrics or {}).items() if is_history_value(v)},
                    }
                    # The record first: a kill between the two leaves a record without its checkpoint, which
                    # the resumed run drops (RunFolder.history), never a checkpoint without its record.
                    history.append(record)
                    folder.write_history(history)
                    checkpoints.save((epoch + 1) * per_epoch, state, config=config, metrics=eval_metrics)
                    scalar_log.write(record, record["step"])
                    say(summary_line(record, task.summary_keys))
            except NonFiniteError as e:
                raise NonFiniteError(f"epoch {epoch + 1}: {e}; {last_checkpoint(checkpoints, per_epoch)}") from None
            except KeyboardInterrupt:
                where = f"interrupted in epoch {epoch + 1} of {loop.epochs}; {last_checkpoint(checkpoints, per_epoch)}"
                raise RunInterrupted(f"{where}; continue with --resume {workdir}") from None
            if eval_metrics is None:  # resumed after the last checkpoint, before results.json
                eval_metrics = self.evaluate(state.eval_variables, eval_rng)
            best = checkpoints.best_step()
        best_epoch = None if best is None else best // per_epoch
        best_value = next((r.get(f"eval_{task.best_metric}") for r in history if r["epoch"] == best_epoch), None)
        results = {
            **eval_metrics,
            "best_epoch": best_epoch,
            f"best_{task.best_metric}": best_value,
            "params": count_params(state.params),
            "epochs": loop.epochs,
            "train_images_per_s": history[-1]["images_per_s"] if history else None,
            "train_time_s": sum(r["epoch_time_s"] for r in history),
            "wall_time_s": time.perf_counter() - started,
            "devices": int(task.mesh.devices.size),
            "config": config,
        }
        folder.write_json(RESULTS, results)
        return results

    def _save_and_stop(self, checkpoints: Checkpoints, log: EpochLog, state: TrainState, config: dict, workdir):
        """Saves the state where a preemption stopped the epoch (unless that step's checkpoint exists) and
        raises :class:`Preempted`."""
        step = log.stopped_before
        if step != checkpoints.latest_step():
            checkpoints.save(step, state, config=config, progress=log.progress())
        per_epoch, epochs = self.task.steps_per_epoch, self.loop.epochs
        raise Preempted(
            f"stopped on SIGTERM after train step {step} of {epochs * per_epoch} (epoch {step // per_epoch + 1} "
            f"of {epochs}); checkpoint saved in {checkpoints.directory}/{step}; continue with --resume {workdir}"
        )

    def _initial_state(self, checkpoints: Checkpoints, rng: jax.Array) -> tuple[TrainState, int, dict | None]:
        """``(state, train steps taken, progress inside the epoch)``: the latest intact checkpoint's (damaged
        ones are moved aside and named), else a fresh state (with ``init_from``'s variables when given)."""
        restored = checkpoints.restore_latest(self.abstract_state(rng))
        for step, reason in restored.damaged:
            say(f"checkpoint {step} is damaged ({reason}); moved to {checkpoints.directory}_damaged/{step}")
        if restored.step is not None:
            say(f"resuming from {describe_step(restored.step, self.task.steps_per_epoch)}")
            return restored.state, restored.step, checkpoints.restore_progress(restored.step)
        state = self.init(rng)
        if self.loop.init_from is not None:
            state = self.with_variables(state, self.load_variables(self.loop.init_from))
        return state, 0, None

    def load_variables(self, path: str) -> dict:
        """Host variables from ``path``: an orbax checkpoint folder of a run of the same model (its EMA
        when kept), else a weights file the task imports."""
        if not os.path.isdir(path):
            return self.task.load_variables(path)
        state, saved = load_state(path)
        diff = [d for d in differences(saved, to_dict(self.task.config)) if d.startswith("model.")]
        check(not diff, "init_from", path, "a checkpoint of the same model; differing settings: " + "; ".join(diff))
        return saved_variables(state)

    def with_variables(self, state: TrainState, variables: dict) -> TrainState:
        """``state`` with params and model state (and EMA, if kept) from host ``variables`` (same
        structure and shapes), and a fresh optimizer state."""
        mesh = self.task.mesh
        variables = replicate(variables, mesh)
        params = variables["params"]
        model_state = {k: variables.get(k, v) for k, v in state.model_state.items()}

        def shapes(tree):
            return jax.tree_util.tree_structure(tree), jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)

        for name, new, old in (("params", params, state.params), ("model state", model_state, state.model_state)):
            check(
                shapes(new) == shapes(old),
                "init_from",
                self.loop.init_from,
                f"{name} of the model's structure and shapes",
            )
        ema = state.ema
        if ema is not None:  # copies: the step donates the state, so no two leaves may share a buffer
            ema = ema.replace(variables=jax.tree_util.tree_map(jnp.copy, {"params": params, **model_state}))
        opt_state = jit_over(mesh, self.optimizer.tx.init)(params)
        return state.replace(params=params, model_state=model_state, ema=ema, opt_state=opt_state)

    def evaluate_only(self) -> dict:
        """Evaluates ``init_from``, else the workdir's latest checkpoint (whose config must match); writes
        the metrics to the task's ``eval_file`` in the workdir and returns them."""
        task, loop = self.task, self.loop
        started = time.perf_counter()
        source = loop.init_from or loop.workdir
        if loop.init_from is not None:
            variables = self.load_variables(loop.init_from)
        else:
            folder = RunFolder(loop.workdir)
            if not folder.exists(CHECKPOINTS):
                raise FileNotFoundError(
                    f"eval_only: no checkpoints in workdir {loop.workdir!r}; train first or pass --init_from"
                )
            ignored = result_neutral(type(task.config))
            check_processes(folder, to_dict(task.config), ignored)
            folder.check_config(to_dict(task.config), ignored, write=False)
            variables = saved_variables(load_state(loop.workdir)[0])
        metrics = self.evaluate(replicate(variables, task.mesh), run_keys(loop.seed)[1])
        results = {
            **metrics,
            "source": source,
            "params": count_params(variables["params"]),
            "wall_time_s": time.perf_counter() - started,
            "devices": int(task.mesh.devices.size),
            "config": to_dict(task.config),
        }
        RunFolder(loop.workdir).write_json(task.eval_file, results)
        return results


def run(task: Task) -> dict:
    """Trains (or resumes, or reports) the task's run, or with ``eval_only`` evaluates it."""
    trainer = Trainer(task)
    return trainer.evaluate_only() if task.config.loop.eval_only else trainer.train()
