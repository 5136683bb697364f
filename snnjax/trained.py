"""A trained model ready to predict: a run folder (or one of its checkpoints) rebuilt without its data.

:func:`load_trained` takes the checkpoint's config, the run folder's ``model.json`` (what the task saved
when the run started: class names, input size, normalisation; ``snnjax.engine.rundir``), builds the model
and restores the checkpoint's evaluation variables (the EMA's when kept). A run from before ``model.json``
existed, or a checkpoint outside any run folder, is set up once instead (its data loaded, as training
found it) to learn the same, with a note on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from snnjax.checks import InvalidValue, check
from snnjax.engine.checkpoint import Checkpoints, load_state, locate
from snnjax.engine.rundir import CHECKPOINTS, CONFIG, MODEL_INFO, MODEL_INFO_FORMAT, RunFolder
from snnjax.engine.state import saved_variables
from snnjax.settings import from_dict, replace_paths
from snnjax.tasks import classification, detection
from snnjax.tasks.classification.task import build_model as build_classifier
from snnjax.tasks.detection.task import build_model as build_detector


@dataclasses.dataclass(frozen=True)
class Kind:
    """A task as predicting sees it: its config class, ``build_model(model_config, num_classes)``,
    ``setup(config) -> task`` (the fallback), and the model's input ``[1, ...]`` from ``model.json``."""

    config_cls: type
    build_model: Callable[[Any, int], nn.Module]
    setup: Callable[[Any], Any]
    input_shape: Callable[[dict], tuple[int, ...]]


KINDS = {
    "classification": Kind(
        classification.ClassificationConfig,
        build_classifier,
        classification.setup,
        lambda info: (1, *info["image_shape"]),
    ),
    "detection": Kind(
        detection.DetectionConfig,
        build_detector,
        detection.setup,
        lambda info: (1, info["img_size"], info["img_size"], 3),
    ),
}


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A checkpoint's model and evaluation variables, its ``config``, ``task`` (a key of :data:`KINDS`) and
    ``info`` (the ``model.json`` content: ``class_names`` and the input, ``image_shape``/``mean``/``std``
    for a classifier, ``img_size`` for a detector); ``checkpoint``: the step folder read; ``run_dir``:
    the run folder holding it, or None."""

    task: str
    model: nn.Module
    variables: dict
    config: Any
    info: dict
    checkpoint: str
    run_dir: str | None

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.info["class_names"])


def find_checkpoint(path: str) -> tuple[str, str | None]:
    """``(step folder, run folder or None)`` of ``path``: a run folder or its ``checkpoints`` folder (the
    latest step), or one step folder. Raises FileNotFoundError naming ``path`` when it holds none."""
    directory, step = locate(path)
    if step is None:
        with Checkpoints(directory, read_only=True) as checkpoints:
            step = checkpoints.latest_step()
        if step is None:
            raise FileNotFoundError(f"no complete checkpoint in {directory!r}; train the run first")
    run_dir = os.path.dirname(directory)
    is_run = os.path.basename(directory) == CHECKPOINTS and os.path.isfile(os.path.join(run_dir, CONFIG))
    return os.path.join(directory, str(step)), run_dir if is_run else None


def task_of(config: dict, path: str) -> str:
    """The key of :data:`KINDS` whose config class reads the saved ``config``."""
    for name, kind in KINDS.items():
        try:
            from_dict(kind.config_cls, config)
        except ValueError:
            continue
        return name
    raise InvalidValue("workdir", path, "a run (or checkpoint) of snnjax-cifar or snnjax-voc")


def learned_info(kind: Kind, config: Any, where: str) -> dict:
    """``model.json``'s content for a run that has none, from its task set up once (its data loaded)."""
    print(
        f"note: {where} has no {MODEL_INFO} (made before runs saved it); loading the run's data once to learn "
        "its classes and input (re-running its training command with --resume saves it)",
        file=sys.stderr,
        flush=True,
    )
    return {"format": MODEL_INFO_FORMAT, **kind.setup(config).model_info()}


def check_variables(model: nn.Module, variables: dict, input_shape: tuple[int, ...], path: str) -> None:
    """Raises :class:`InvalidValue` naming ``path`` unless ``variables`` have the model's structure and shapes."""
    key = jax.random.key(0)
    expected = jax.eval_shape(
        lambda: model.init({"params": key, "encoding": key}, jnp.zeros(input_shape, jnp.float32), train=False)
    )
    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)  # noqa: E731
    got = shapes(variables["params"])
    check(
        got == shapes(expected["params"]),
        "workdir",
        path,
        "a checkpoint whose parameters fit its config and model.json (another model's weights?)",
    )


@contextlib.contextmanager
def quiet_orbax() -> Iterator[None]:
    """Silences orbax's warnings (read-only folders, metadata a raw restore does not need)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


def load_trained(path: str) -> TrainedModel:
    """The trained model at ``path``: a run folder (its latest checkpoint), its ``checkpoints`` folder or one
    step folder, on this process's first device. Raises FileNotFoundError, :class:`InvalidValue`
    (``workdir``), ``RunFolderError`` or ``CheckpointError`` with one-line messages."""
    check(isinstance(path, str) and os.path.exists(path), "workdir", path, "an existing run folder or checkpoint")
    with quiet_orbax():
        step_folder, run_dir = find_checkpoint(path)
        state, saved = load_state(step_folder)
    variables = saved_variables(state)
    info = RunFolder(run_dir).read_json(MODEL_INFO) if run_dir is not None else None
    check(
        info is None or info.get("format") == MODEL_INFO_FORMAT,
        "workdir",
        path,
        f"a run whose {MODEL_INFO} has format {MODEL_INFO_FORMAT} (this snnjax's; a newer one wrote it?)",
    )
    task = info["task"] if info is not None else task_of(saved, path)
    check(task in KINDS, "workdir", path, f"a run whose {MODEL_INFO} names a task of {sorted(KINDS)}")
    kind = KINDS[task]
    config = from_dict(kind.config_cls, saved)
    config = replace_paths(config, {"loop.num_devices": 1, "loop.distributed": False})
    if info is None:
        info = learned_info(kind, config, run_dir or path)
    model = kind.build_model(config.model, len(info["class_names"]))
    check_variables(model, variables, kind.input_shape(info), path)
    return TrainedModel(task, model, variables, config, info, step_folder, run_dir)
