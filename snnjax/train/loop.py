"""One generic training loop for every task (classification, detection).

A :class:`Task` supplies the model's variables, the loss, the per-step inputs and the evaluation;
the loop owns the devices, the optimizer, checkpoints, logging and the results files. The train step
is a pure ``(state, batch, data) -> (state, metrics)`` under ``jax.jit`` with the state donated,
data-parallel over a ``Mesh`` with one axis ``"data"``: parameters replicated, the batch split over
devices (the task constrains its batch with :func:`batch_sharding`), gradients and BatchNorm
statistics reduced by XLA. ``data`` is a device-resident pytree every step reads (CIFAR as uint8),
or None for tasks that feed batches from the host. Multi-host runs (``LoopConfig.distributed``) use
the same program over all processes' devices; each process supplies its own part of a batch
(:func:`global_batch`, or indices into replicated device data, as classification does).

Optimizers that accumulate gradients (``optax.MultiSteps``) update the parameters every few steps;
when the optimizer config asks for one (:func:`snnjax.train.optim.ema_decay_schedule`), the state
keeps an EMA of the variables, updated after each optimizer update, which evaluation, checkpoints'
metrics and ``results.json`` use.

Files in ``workdir``: ``config.json`` (resume check), ``checkpoints/`` (orbax), ``metrics.jsonl``
(one line per epoch), ``results.json`` (written once, when the run finishes; a finished run is never
trained again or overwritten), ``eval*.json`` (evaluation-only runs).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from snnjax.checkpoint import Checkpoints, load_state
from snnjax.train.config import LoopConfig, OptimConfig, SGDConfig, check_resume_config, config_differences
from snnjax.train.optim import ema_decay_schedule, epoch_learning_rate, make_optimizer
from snnjax.train.optim import updated as optimizer_updated
from snnjax.train.state import TrainState, count_params, create_train_state, saved_variables, update_ema

DATA_AXIS = "data"
# Init runs once: skipping XLA's backend optimisations cuts its CPU compile time ~10x (QKFormer-3-32).
_RUN_ONCE = {"xla_backend_optimization_level": 0}
_EVAL_STREAM = 2**31 - 1  # folded into the run key for evaluation randomness (poisson, shuffle_time)


class Task(Protocol):
    """What the loop needs from a task. Everything but the host-side iterators is jittable.

    A task whose evaluation needs every prediction on the host (detection mAP) defines
    ``evaluate(variables, rng) -> dict`` (host-side, JSON-ready metrics of the replicated ``variables``);
    the loop then calls it instead of ``eval_batches``/``eval_sums``/``summarize``.

    Attributes:
      steps_per_epoch: train steps (batches) per epoch (the schedule is per epoch).
      best_metric: higher-is-better entry of :meth:`summarize`'s result used to keep the best checkpoint.
      data: device-resident pytree passed to every step (replicated), or None.
    """

    steps_per_epoch: int
    best_metric: str
    data: Any

    def init_variables(self, rng: jax.Array) -> dict:
        """Fresh model variables ``{"params": ..., other collections}``."""

    def train_batches(self, epoch: int, rng: jax.Array) -> Iterator[Any]:
        """The per-step inputs of one epoch (device arrays or host scalars)."""

    def train_loss(self, params, model_state: dict, batch, data, rng: jax.Array) -> tuple[jax.Array, tuple[dict, dict]]:
        """``loss, (new model_state, metrics)``; metrics are batch means of scalars."""

    def eval_batches(self) -> Iterator[Any]:
        """The per-step inputs of one evaluation pass."""

    def eval_sums(self, variables: dict, batch, data, rng: jax.Array) -> dict:
        """Per-batch sums (a pytree of scalars) that :meth:`summarize` turns into metrics."""

    def summarize(self, sums: dict) -> dict:
        """Host-side, JSON-ready evaluation metrics from the summed ``eval_sums``."""


def setup_devices(config: LoopConfig) -> Mesh:
    """Starts JAX's multi-process runtime when configured; returns the 1-D ``"data"`` mesh.

    Raises ValueError when the batch sizes do not split evenly over the devices.
    """
    if config.distributed:
        kwargs = {
            k: getattr(config, k)
            for k in ("coordinator_address", "num_processes", "process_id")
            if getattr(config, k) is not None
        }
        jax.distributed.initialize(**kwargs)
    devices = jax.devices()
    n = config.num_devices or len(devices)
    if not 1 <= n <= len(devices):
        raise ValueError(f"num_devices: must be in [1, {len(devices)}], got {n}")
    for name in ("batch_size", "eval_batch_size"):
        if getattr(config, name) % n:
            raise ValueError(f"{name}: {getattr(config, name)} does not split over {n} devices")
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) axis over the ``"data"`` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Host arrays (identical on every process) -> global arrays replicated over ``mesh``."""
    sharding = replicated(mesh)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree_util.tree_map(put, tree)


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
    """This process's part of a batch (host arrays) -> global arrays split over ``"data"``."""
    sharding = batch_sharding(mesh)
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch
    )


def _needs_sync(mesh: Mesh) -> bool:
    """XLA's CPU collectives can deadlock with many multi-device steps in flight: wait on each."""
    return mesh.devices.size > 1 and mesh.devices.flat[0].platform == "cpu"


def _is_main() -> bool:
    return jax.process_index() == 0


def make_train_step(
    task: Task, tx: optax.GradientTransformation, mesh: Mesh, ema_decay: Callable[[jax.Array], jax.Array] | None = None
):
    """The jitted, state-donating ``train_step(state, batch, data) -> (state, metrics)``; ``ema_decay``
    (``updates -> decay``) updates ``state.ema`` after each optimizer update."""

    def train_step(state: TrainState, batch, data):
        rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            return task.train_loss(params, state.model_state, batch, data, rng)

        (loss, (model_state, metrics)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = state.replace(step=state.step + 1, params=params, model_state=model_state, opt_state=opt_state)
        if state.ema is not None:
            new_state = new_state.replace(
                ema=update_ema(state.ema, new_state.variables, optimizer_updated(opt_state), ema_decay)
            )
        return new_state, {"loss": loss, **metrics}

    return jax.jit(train_step, donate_argnums=0, out_shardings=replicated(mesh))


def make_eval_step(task: Task, mesh: Mesh):
    """The jitted ``eval_step(totals, variables, batch, data, rng) -> totals + eval_sums(...)``."""

    def eval_step(totals, variables, batch, data, rng):
        sums = task.eval_sums(variables, batch, data, rng)
        return jax.tree_util.tree_map(jnp.add, totals, sums)

    return jax.jit(eval_step, donate_argnums=0, out_shardings=replicated(mesh))


def evaluate(task: Task, eval_step, variables: dict, rng: jax.Array, mesh: Mesh) -> dict:
    """One pass over the task's evaluation batches; returns ``task.summarize`` of the summed results
    (or the task's own ``evaluate``)."""
    if hasattr(task, "evaluate"):
        return task.evaluate(variables, rng)
    totals = None
    for i, batch in enumerate(task.eval_batches()):
        if totals is None:
            shapes = jax.eval_shape(task.eval_sums, variables, batch, task.data, rng)
            totals = replicate(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes), mesh)
        totals = eval_step(totals, variables, batch, task.data, jax.random.fold_in(rng, i))
        if _needs_sync(mesh):
            jax.block_until_ready(totals)
    return task.summarize(jax.device_get(totals))


class _EpochLog:
    """Host-side running means of step metrics, fed one step late so the host never waits for the
    step it just dispatched; times throughput from the end of the first step (no compile time)."""

    def __init__(self, bar, batch_size: int, log_every: int):
        self.bar, self.batch_size, self.log_every = bar, batch_size, log_every
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.start = None

    def record(self, metrics: dict) -> None:
        metrics = jax.device_get(metrics)
        if self.start is None:
            self.start = time.perf_counter()
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.steps += 1
        self.bar.update(1)
        if self.steps % self.log_every == 0:
            self.bar.set_postfix(
                {**{k: f"{v:.4g}" for k, v in self.means().items()}, "img/s": f"{self.images_per_second():.0f}"},
                refresh=False,
            )

    def means(self) -> dict[str, float]:
        return {k: v / max(self.steps, 1) for k, v in self.sums.items()}

    def images_per_second(self) -> float:
        elapsed = time.perf_counter() - self.start if self.start is not None else 0.0
        return (self.steps - 1) * self.batch_size / elapsed if elapsed > 0 else float("nan")


def train_epoch(task: Task, train_step, state: TrainState, epoch: int, config: LoopConfig, mesh: Mesh):
    """Runs one epoch; returns the new state and the epoch's mean metrics plus ``images_per_s``."""
    from tqdm.auto import tqdm  # only the training loop needs it (benchmarks run without it)

    bar = tqdm(
        total=task.steps_per_epoch,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        leave=False,
        disable=not (config.progress and _is_main()),
    )
    log = _EpochLog(bar, config.batch_size, config.log_every)
    pending = None
    for batch in task.train_batches(epoch, jax.random.fold_in(state.rng, epoch)):
        state, metrics = train_step(state, batch, task.data)
        if _needs_sync(mesh):
            jax.block_until_ready(metrics)
        if pending is not None:
            log.record(pending)
        pending = metrics
    log.record(pending)
    bar.close()
    return state, {**{f"train_{k}": v for k, v in log.means().items()}, "images_per_s": log.images_per_second()}


def _write_json(path: str, content: dict) -> None:
    if _is_main():
        with open(path + ".tmp", "w") as f:
            json.dump(content, f, indent=2, sort_keys=True)
        os.replace(path + ".tmp", path)


def _append_jsonl(path: str, record: dict) -> None:
    if _is_main():
        with open(path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")


def _metrics_history(path: str, last_epoch: int) -> list[dict]:
    """The records of epochs ``<= last_epoch`` in ``metrics.jsonl``; drops later ones (written before an
    interruption that lost their checkpoint), so a resumed run's file has each epoch once."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    kept = [r for r in records if r["epoch"] <= last_epoch]
    if len(kept) != len(records) and _is_main():
        with open(path, "w") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in kept)
    return kept


class Programs(NamedTuple):
    """A run's optimizer and jitted functions."""

    tx: optax.GradientTransformation
    init_state: Callable  # rng -> TrainState (pure)
    init: Callable  # jitted init_state, replicated output
    train_step: Callable
    eval_step: Callable


@functools.lru_cache(maxsize=2)
def _eval_program(task: Task, mesh: Mesh):
    return make_eval_step(task, mesh)


@functools.lru_cache(maxsize=2)
def programs(
    task: Task, optim: OptimConfig | SGDConfig, epochs: int, mesh: Mesh, batch_size: int | None = None
) -> Programs:
    """The run's jitted functions, built once per (task, optimizer, mesh): repeated runs in one process
    (tests, notebooks) reuse their compilations. The cache keeps the task (and its data) alive.
    ``batch_size``: the global batch, for optimizers that need it (SGD's accumulation)."""
    tx = make_optimizer(optim, epochs, task.steps_per_epoch, batch_size)
    ema_decay = ema_decay_schedule(optim)

    def init_state(rng):
        return create_train_state(task.init_variables(rng), tx, rng, ema=ema_decay is not None)

    init = jax.jit(init_state, out_shardings=replicated(mesh), compiler_options=_RUN_ONCE)
    return Programs(tx, init_state, init, make_train_step(task, tx, mesh, ema_decay), _eval_program(task, mesh))


def _run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """The run's base key (raw uint32, storable) and its evaluation key."""
    rng = jax.random.key_data(jax.random.key(seed))
    return rng, jax.random.fold_in(rng, _EVAL_STREAM)


def _abstract_state(programs: Programs, rng, mesh: Mesh):
    """Shapes, dtypes and shardings of the train state, without compiling anything."""
    shapes = jax.eval_shape(programs.init_state, rng)
    sharding = replicated(mesh)
    return jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def _initial_state(programs: Programs, checkpoints: Checkpoints, rng, mesh: Mesh, init_variables):
    """``(state, finished epochs)``: the latest checkpoint's state, else a fresh (or loaded) one."""
    start_epoch = checkpoints.latest_step() or 0
    if start_epoch:
        _say(f"resuming after epoch {start_epoch}")
        return checkpoints.restore(start_epoch, _abstract_state(programs, rng, mesh)), start_epoch
    state = programs.init(rng)
    loaded = init_variables() if init_variables is not None else None
    if loaded is not None:
        state = _with_variables(state, loaded, programs.tx, mesh)
    return state, 0


def _say(message: str) -> None:
    if _is_main():
        print(message, flush=True)


def train(
    task: Task,
    config: LoopConfig,
    optim: OptimConfig | SGDConfig,
    run_config: dict,
    mesh: Mesh,
    init_variables: Callable[[], dict | None] | None = None,
) -> dict:
    """Trains (or resumes) the run in ``config.workdir``; returns the contents of ``results.json``.

    ``run_config`` (the whole experiment's config as a dict) is checked against the workdir's on resume
    and saved with every checkpoint. ``init_variables``, called only when a run starts (not on resume),
    may return host variables that replace the fresh ones.
    """
    results_path = os.path.join(config.workdir, "results.json")
    if os.path.exists(results_path):
        check_resume_config(config.workdir, run_config, write=False)
        _say(f"run already finished: {results_path} (use another --workdir to train again)")
        with open(results_path) as f:
            return json.load(f)
    check_resume_config(config.workdir, run_config, write=_is_main())
    started = time.perf_counter()
    compiled = programs(task, optim, config.epochs, mesh, config.batch_size)
    rng, eval_rng = _run_keys(config.seed)
    metrics_path = os.path.join(config.workdir, "metrics.jsonl")
    with Checkpoints(
        os.path.join(config.workdir, "checkpoints"), keep=config.keep, best_metric=task.best_metric
    ) as checkpoints:
        state, start_epoch = _initial_state(compiled, checkpoints, rng, mesh, init_variables)
        history = _metrics_history(metrics_path, start_epoch)
        eval_metrics = None
        for epoch in range(start_epoch, config.epochs):
            epoch_start = time.perf_counter()
            state, record = train_epoch(task, compiled.train_step, state, epoch, config, mesh)
            eval_metrics = None
            if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
                eval_metrics = evaluate(task, compiled.eval_step, state.eval_variables, eval_rng, mesh)
            checkpoints.save(epoch + 1, state, config=run_config, metrics=eval_metrics)
            record = {
                "epoch": epoch + 1,
                "step": (epoch + 1) * task.steps_per_epoch,
                "lr": float(epoch_learning_rate(epoch, optim, config.epochs)),
                **record,
                "epoch_time_s": time.perf_counter() - epoch_start,
                **{f"eval_{k}": v for k, v in (eval_metrics or {}).items()},
            }
            history.append(record)
            _append_jsonl(metrics_path, record)
            _say(_summary_line(record))
        if eval_metrics is None:  # resumed after the last checkpoint, before results.json
            eval_metrics = evaluate(task, compiled.eval_step, state.eval_variables, eval_rng, mesh)
        checkpoints.wait()
        best = checkpoints.best_step()
    results = {
        **eval_metrics,
        **_best(history, best, task.best_metric),
        "params": count_params(state.params),
        "epochs": config.epochs,
        "train_images_per_s": history[-1]["images_per_s"] if history else None,
        "train_time_s": sum(r["epoch_time_s"] for r in history),
        "wall_time_s": time.perf_counter() - started,
        "devices": int(mesh.devices.size),
        "config": run_config,
    }
    _write_json(results_path, results)
    return results


def _with_variables(state: TrainState, variables: dict, tx, mesh: Mesh) -> TrainState:
    """``state`` with params and model state (and EMA, if kept) from ``variables`` (which must match
    their structure), and a fresh optimizer state."""
    variables = replicate(variables, mesh)
    params = variables["params"]
    model_state = {k: variables.get(k, v) for k, v in state.model_state.items()}
    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)  # noqa: E731
    for name, new, old in (("params", params, state.params), ("model state", model_state, state.model_state)):
        if jax.tree_util.tree_structure(new) != jax.tree_util.tree_structure(old) or shapes(new) != shapes(old):
            raise ValueError(f"init_from: the loaded {name} do not match the model's structure and shapes")
    ema = state.ema
    if ema is not None:  # copies: the step donates the state, so no two leaves may share a buffer
        ema = ema.replace(variables=jax.tree_util.tree_map(jnp.copy, {"params": params, **model_state}))
    return state.replace(
        params=params,
        model_state=model_state,
        ema=ema,
        opt_state=jax.jit(tx.init, out_shardings=replicated(mesh))(params),
    )


def _best(history: list[dict], best_epoch: int | None, metric: str) -> dict:
    """``best_epoch`` and the value of ``best_<metric>`` there, from the epoch records."""
    value = next((r.get(f"eval_{metric}") for r in history if r["epoch"] == best_epoch), None)
    return {"best_epoch": best_epoch, f"best_{metric}": value}


def _summary_line(record: dict) -> str:
    keys = (
        "train_loss",
        "train_accuracy",
        "eval_loss",
        "eval_accuracy",
        "eval_map50",
        "eval_map50_95",
        "images_per_s",
        "epoch_time_s",
    )
    parts = [f"{k}={record[k]:.4g}" for k in keys if isinstance(record.get(k), (int, float))]
    return f"epoch {record['epoch']}: lr={record['lr']:.3g} " + " ".join(parts)


def evaluate_only(task: Task, config: LoopConfig, mesh: Mesh, variables: dict, output: str, extra: dict) -> dict:
    """Evaluates host ``variables``; writes the metrics and ``extra`` to ``workdir/output``."""
    started = time.perf_counter()
    metrics = evaluate(task, _eval_program(task, mesh), replicate(variables, mesh), _run_keys(config.seed)[1], mesh)
    results = {
        **metrics,
        **extra,
        "params": count_params(variables["params"]),
        "wall_time_s": time.perf_counter() - started,
        "devices": int(mesh.devices.size),
    }
    os.makedirs(config.workdir, exist_ok=True)
    _write_json(os.path.join(config.workdir, output), results)
    return results


def checkpoint_variables(path: str, run_config: dict) -> dict:
    """The evaluation variables (the EMA when kept) of the orbax checkpoint at ``path`` (a workdir, its
    ``checkpoints`` folder or a step), whose saved model config must equal ``run_config``'s."""
    state, saved = load_state(path)
    diff = [d for d in config_differences(saved, run_config) if d.startswith("model.")]
    if diff:
        raise ValueError(
            f"init_from: the checkpoint at {path!r} has another model; differing fields: " + "; ".join(diff)
        )
    return saved_variables(state)


def workdir_variables(workdir: str, run_config: dict) -> dict:
    """The evaluation variables of ``workdir``'s latest checkpoint; its whole config must match."""
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
        raise FileNotFoundError(f"eval_only: no checkpoints in workdir {workdir!r}; train first or pass --init_from")
    check_resume_config(workdir, run_config, write=False)
    return saved_variables(load_state(workdir)[0])


__all__ = [
    "Task",
    "checkpoint_variables",
    "workdir_variables",
    "Programs",
    "programs",
    "setup_devices",
    "replicated",
    "batch_sharding",
    "replicate",
    "global_batch",
    "make_train_step",
    "make_eval_step",
    "evaluate",
    "train_epoch",
    "train",
    "evaluate_only",
]
