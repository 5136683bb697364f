"""What a task hands the engine: the :class:`Task` and :class:`Evaluator` protocols.

A task (``snnjax.tasks.<name>``) owns its config, model, data, loss, optimizer and evaluators; the
engine (``snnjax.engine.loop``) owns devices, steps, checkpoints and the run folder, and never names a
task. A new task is a new folder implementing these two protocols, plus an experiment script.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import jax
from jax.sharding import Mesh

from snnjax.engine.optimizer import Optimizer


class Evaluator(Protocol):
    """One evaluation of replicated model variables: ``(variables, rng) -> JSON-ready metrics``.

    Device-summed statistics (:class:`snnjax.engine.evaluators.SumEvaluator`) and host-side measures
    (detection mAP) are both evaluators; the loop merges their metrics into one dict.
    """

    def __call__(self, variables: dict, rng: jax.Array) -> dict: ...


class Task(Protocol):
    """A training task. ``train_loss`` is traced into the jitted train step; the rest runs on the host.

    Attributes:
      config: the experiment's config; ``config.loop`` is its :class:`snnjax.engine.config.LoopConfig`.
      mesh: the device mesh (``snnjax.engine.sharding.make_mesh``).
      steps_per_epoch: train steps (batches) per epoch.
      best_metric: higher-is-better evaluation metric that picks the best checkpoint.
      summary_keys: evaluation metrics printed after each epoch.
      evaluators: what evaluation runs, in order.
      eval_file: where an evaluation-only run writes its metrics, in the workdir (e.g. ``eval.json``).
    """

    config: Any
    mesh: Mesh
    steps_per_epoch: int
    best_metric: str
    summary_keys: Sequence[str]
    evaluators: Sequence[Evaluator]
    eval_file: str

    def init_variables(self, rng: jax.Array) -> dict:
        """Fresh model variables ``{"params": ..., other collections}`` (pure, jittable)."""

    def optimizer(self) -> Optimizer:
        """The run's optimizer, for ``config.loop.epochs`` epochs of ``steps_per_epoch`` steps."""

    def train_batches(self, epoch: int, rng: jax.Array, start: int = 0) -> Iterator[Any]:
        """The inputs of train steps ``start, start + 1, ...`` of one epoch (``start`` > 0 when a run resumes
        mid-epoch): pytrees of global device arrays or host scalars, the same for a step whatever ``start``."""

    def train_loss(self, params: Any, model_state: dict, batch: Any, rng: jax.Array) -> tuple[jax.Array, tuple]:
        """``loss, (new model_state, metrics)``; metrics are batch means of scalars."""

    def load_variables(self, path: str) -> dict:
        """Host variables from ``config.loop.init_from``'s ``path`` (a checkpoint or weights file)."""

    def model_info(self) -> dict:
        """Optional: what predicting needs besides the config, JSON-ready (class names, input size,
        normalisation); the engine saves it in the run folder's ``model.json`` when a run starts."""
