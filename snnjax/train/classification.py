"""Image classification as a task of the generic loop (QKFormer on CIFAR, synthetic or npz data).

The whole dataset lives on the devices as uint8 (replicated); every train step slices its batch
from a per-epoch on-device permutation, splits it over the ``"data"`` mesh axis, augments it with
``snnjax.data.augment_batch`` and trains on soft-target cross-entropy (spec §2). Evaluation uses
plain cross-entropy on the normalised test images and reports per-layer firing rates.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from snnjax import data as datasets
from snnjax.metrics.spikes import firing_rates, shuffle_time_interceptor
from snnjax.models.qkformer import QKFormer, qkformer
from snnjax.train import loop
from snnjax.train.config import ClassificationConfig, ModelConfig, compute_dtype, to_dict


def build_model(config: ModelConfig, num_classes: int) -> QKFormer:
    """The QKFormer described by ``config`` (raises ValueError naming a bad field)."""
    return qkformer(
        config.name,
        num_classes=num_classes,
        spiking=config.spiking,
        official_ssa_scan=config.official_ssa_scan,
        dtype=compute_dtype(config.dtype),
    )


def load_data(config: ClassificationConfig) -> datasets.ClassificationData:
    """The dataset named by ``config.data.dataset`` (synthetic sized by the ``synthetic_*`` fields)."""
    d = config.data
    options = {}
    if d.dataset == "synthetic":
        options = dict(
            num_train=d.synthetic_train,
            num_test=d.synthetic_test,
            image_size=d.synthetic_image_size,
            seed=config.loop.seed,
        )
    return datasets.load_classification(d.dataset, data_dir=d.data_dir, **options)


class ClassificationTask:
    """Soft-target cross-entropy training and top-1 evaluation of ``model`` on ``data``."""

    best_metric = "accuracy"

    def __init__(self, config: ClassificationConfig, data: datasets.ClassificationData, model: nn.Module, mesh: Mesh):
        self.config, self.model, self.mesh = config, model, mesh
        self.num_classes, self.mean, self.std = data.num_classes, tuple(data.mean), tuple(data.std)
        self.image_shape = tuple(data.x_train.shape[1:])
        self.batch_size = config.loop.batch_size
        self.eval_batch_size = config.loop.eval_batch_size
        self.num_train, self.num_test = len(data.x_train), len(data.x_test)
        self.steps_per_epoch = self.num_train // self.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size: {self.batch_size} exceeds the {self.num_train} training images")
        self.data = loop.replicate(
            {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}, mesh
        )
        self._permutation = jax.jit(
            lambda key: jax.random.permutation(key, self.num_train).astype(jnp.int32),
            out_shardings=loop.replicated(mesh),
        )

    def init_variables(self, rng: jax.Array) -> dict:
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        variables = self.model.init({"params": rng, "encoding": rng}, x, train=False)
        return {k: v for k, v in variables.items() if k != "firing_rates"}

    def train_batches(self, epoch: int, rng: jax.Array) -> Iterator[dict]:
        perm = self._permutation(rng)
        for i in range(self.steps_per_epoch):
            yield {"perm": perm, "index": np.int32(i)}

    def train_loss(self, params, model_state, batch, data, rng):
        """Gathers the batch's images on their devices, augments them and returns soft-target CE."""
        idx = jax.lax.dynamic_slice_in_dim(batch["perm"], batch["index"] * self.batch_size, self.batch_size)
        idx = jax.lax.with_sharding_constraint(idx, loop.batch_sharding(self.mesh))
        augment_rng, encoding_rng = jax.random.split(rng)
        d = self.config.data
        images, targets = datasets.augment_batch(
            augment_rng,
            data["x_train"][idx],
            data["y_train"][idx],
            policy=d.augment,
            num_classes=self.num_classes,
            mean=self.mean,
            std=self.std,
            label_smoothing=d.label_smoothing,
            mixup_alpha=d.mixup_alpha,
            erase_prob=d.erase_prob,
        )
        logits, updates = self.model.apply(
            {"params": params, **model_state},
            images,
            train=True,
            mutable=list(model_state),
            rngs={"encoding": encoding_rng},
        )
        loss = jnp.mean(optax.softmax_cross_entropy(logits, targets))
        accuracy = jnp.mean(jnp.argmax(logits, -1) == jnp.argmax(targets, -1))
        return loss, (dict(updates), {"accuracy": accuracy})

    def eval_batches(self) -> Iterator[dict]:
        for i in range(-(-self.num_test // self.eval_batch_size)):
            yield {"index": np.int32(i)}

    def eval_sums(self, variables, batch, data, rng) -> dict:
        """Sums of loss, correct predictions and firing rates over the batch's valid (unpadded) images."""
        idx = batch["index"] * self.eval_batch_size + jnp.arange(self.eval_batch_size)
        valid = (idx < self.num_test).astype(jnp.float32)
        idx = jax.lax.with_sharding_constraint(jnp.minimum(idx, self.num_test - 1), loop.batch_sharding(self.mesh))
        images = datasets.normalize(data["x_test"][idx], self.mean, self.std)
        labels = data["y_test"][idx]
        shuffle_rng, encoding_rng = jax.random.split(rng)
        shuffling = (
            nn.intercept_methods(shuffle_time_interceptor(shuffle_rng, self.model.spiking.T))
            if self.config.shuffle_time
            else contextlib.nullcontext()
        )
        with shuffling:
            logits, sown = self.model.apply(
                variables, images, train=False, mutable=["firing_rates"], rngs={"encoding": encoding_rng}
            )
        count = jnp.sum(valid)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return {
            "count": count,
            "loss": jnp.sum(loss * valid),
            "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * valid),
            "firing_rates": {k: v * count for k, v in firing_rates(sown.get("firing_rates", {})).items()},
        }

    def summarize(self, sums: dict) -> dict:
        count = float(sums["count"])
        rates = {k: float(v) / count for k, v in sums["firing_rates"].items()}
        return {
            "accuracy": float(sums["correct"]) / count,
            "loss": float(sums["loss"]) / count,
            "firing_rates": rates,
            "mean_firing_rate": float(np.mean(list(rates.values()))) if rates else None,
        }


def pretrained_variables(config: ClassificationConfig, model: QKFormer) -> dict | None:
    """Variables from ``config.init_from``: an orbax checkpoint folder (whose model config must match)
    or an official QKFormer PyTorch state dict (a file). None when ``init_from`` is unset."""
    path = config.init_from
    if path is None:
        return None
    if os.path.isfile(path):
        from snnjax.models.convert import load_official_qkformer

        return dict(load_official_qkformer(path, model))
    return loop.checkpoint_variables(path, to_dict(config))


def setup(config: ClassificationConfig) -> ClassificationTask:
    """Devices, data and model of ``config``, as a task."""
    mesh = loop.setup_devices(config.loop)
    data = load_data(config)
    return ClassificationTask(config, data, build_model(config.model, data.num_classes), mesh)


def train(task: ClassificationTask) -> dict:
    """Trains (or resumes, or reports the finished) run of ``task.config``; returns its results."""
    config = task.config
    return loop.train(
        task,
        config.loop,
        config.optim,
        to_dict(config),
        task.mesh,
        init_variables=lambda: pretrained_variables(config, task.model),
    )


def evaluate(task: ClassificationTask) -> dict:
    """Evaluates ``init_from``, else the workdir's latest checkpoint (whose config must match);
    writes ``eval.json`` (``eval_shuffle_time.json`` with ``shuffle_time``) to the workdir."""
    config = task.config
    variables, source = pretrained_variables(config, task.model), config.init_from
    if variables is None:
        variables, source = loop.workdir_variables(config.loop.workdir, to_dict(config)), config.loop.workdir
    output = "eval_shuffle_time.json" if config.shuffle_time else "eval.json"
    return loop.evaluate_only(
        task,
        config.loop,
        task.mesh,
        variables,
        output,
        {"source": source, "shuffle_time": config.shuffle_time, "config": to_dict(config)},
    )


def run(config: ClassificationConfig) -> dict:
    """Trains (or resumes), or with ``eval_only`` evaluates, the experiment ``config``."""
    task = setup(config)
    return evaluate(task) if config.eval_only else train(task)
