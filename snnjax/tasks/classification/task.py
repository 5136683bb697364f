"""Image classification as a task of the engine (QKFormer on CIFAR, synthetic or npz data).

The whole dataset lives on the devices as uint8 (replicated); every train step gathers its batch from a
per-epoch on-device permutation, splits it over the ``"data"`` mesh axis, augments it
(:func:`snnjax.tasks.classification.data.augment_batch`) and trains on soft-target cross-entropy
(docs/qkformer.md §2). Evaluation sums the cross-entropy, correct predictions, per-layer firing rates and
operation counts (``snnjax.metrics.energy``) of the normalised test images on the devices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from snnjax.checks import check
from snnjax.engine.compiler import jit_over
from snnjax.engine.evaluators import SumEvaluator
from snnjax.engine.programs import program_key, shared
from snnjax.engine.sharding import batch_sharding, make_mesh, replicate
from snnjax.layers import COMPUTE_DTYPES
from snnjax.metrics import energy
from snnjax.metrics.spikes import firing_rates, shuffle_time_interceptor
from snnjax.models.qkformer import QKFormer, qkformer
from snnjax.tasks.classification.config import ClassificationConfig, ModelConfig
from snnjax.tasks.classification.data import ClassificationData, augment_batch, load_classification, normalize
from snnjax.tasks.classification.optimizer import make_optimizer


def build_model(config: ModelConfig, num_classes: int) -> QKFormer:
    """The QKFormer described by ``config``."""
    return qkformer(
        config.name,
        num_classes=num_classes,
        spiking=config.spiking,
        official_ssa_scan=config.official_ssa_scan,
        dtype=COMPUTE_DTYPES[config.dtype],
    )


def load_data(config: ClassificationConfig) -> ClassificationData:
    """The dataset named by ``config.data.dataset`` (synthetic sized by the ``synthetic_*`` settings)."""
    d = config.data
    options = {}
    if d.dataset == "synthetic":
        options = dict(
            num_train=d.synthetic_train,
            num_test=d.synthetic_test,
            image_size=d.synthetic_image_size,
            num_classes=d.synthetic_classes,
            seed=config.loop.seed if d.synthetic_seed is None else d.synthetic_seed,
        )
    return load_classification(d.dataset, data_dir=d.data_dir, **options)


class ClassificationTask:
    """Soft-target cross-entropy training and top-1 evaluation of ``model`` on ``data``."""

    best_metric = "accuracy"
    summary_keys = ("loss", "accuracy")

    def __init__(self, config: ClassificationConfig, data: ClassificationData, model: QKFormer, mesh):
        self.config, self.model, self.mesh = config, model, mesh
        self.num_classes, self.mean, self.std = data.num_classes, tuple(data.mean), tuple(data.std)
        self.image_shape = tuple(data.x_train.shape[1:])
        self.class_names = data.class_names or tuple(str(c) for c in range(data.num_classes))
        self.batch_size = config.loop.batch_size
        self.eval_batch_size = config.loop.eval_batch_size
        self.num_train, self.num_test = len(data.x_train), len(data.x_test)
        self.steps_per_epoch = self.num_train // self.batch_size
        check(self.steps_per_epoch >= 1, "batch_size", self.batch_size, f"at most the {self.num_train} training images")
        self.train_data = replicate({"x": data.x_train, "y": data.y_train}, mesh)
        self.test_data = replicate({"x": data.x_test, "y": data.y_test}, mesh)
        # What the programs take from the data besides the config: runs whose keys agree share them.
        data_constants = (self.num_classes, self.mean, self.std, self.image_shape, self.num_train, self.num_test)
        self.program_key = program_key(config, mesh, *data_constants)
        self._permutation = shared(
            self.program_key,
            "permutation",
            lambda: jit_over(mesh, lambda key: jax.random.permutation(key, self.num_train).astype(jnp.int32)),
        )
        self.eval_file = "eval_shuffle_time.json" if config.shuffle_time else "eval.json"
        self.evaluators = (SumEvaluator(self.eval_batches, self.eval_sums, self.summarize, mesh, self.program_key),)

    def model_info(self) -> dict:
        """What predicting needs besides the config (the run folder's ``model.json``): the class names, the
        input ``image_shape`` [H, W, C] and the normalisation ``mean``/``std`` (per channel, [0, 1] units)."""
        return {
            "task": "classification",
            "class_names": list(self.class_names),
            "image_shape": list(self.image_shape),
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def init_variables(self, rng: jax.Array) -> dict:
        x = jnp.zeros((1, *self.image_shape), jnp.float32)
        variables = self.model.init({"params": rng, "encoding": rng}, x, train=False)
        return {k: v for k, v in variables.items() if k != "firing_rates"}

    def optimizer(self):
        return make_optimizer(self.config.optim, self.config.loop.epochs, self.steps_per_epoch)

    def train_batches(self, epoch: int, rng: jax.Array, start: int = 0) -> Iterator[dict]:
        """The device-resident training set, the epoch's permutation and the step's index into it."""
        perm = self._permutation(rng)
        for i in range(start, self.steps_per_epoch):
            yield {**self.train_data, "perm": perm, "index": np.int32(i)}

    def train_loss(self, params, model_state, batch, rng):
        """Gathers the batch's images on their devices, augments them and returns soft-target CE."""
        idx = jax.lax.dynamic_slice_in_dim(batch["perm"], batch["index"] * self.batch_size, self.batch_size)
        idx = jax.lax.with_sharding_constraint(idx, batch_sharding(self.mesh))
        augment_rng, encoding_rng = jax.random.split(rng)
        d = self.config.data
        images, targets = augment_batch(
            augment_rng,
            batch["x"][idx],
            batch["y"][idx],
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
        """The device-resident test set and the index of each evaluation batch (the last one padded)."""
        for i in range(-(-self.num_test // self.eval_batch_size)):
            yield {**self.test_data, "index": np.int32(i)}

    def eval_sums(self, variables, batch, rng) -> dict:
        """Sums of loss, correct predictions, firing rates and operations over the batch's real images (the
        padding rows of the last batch, clamped copies of the last image, are weighted 0)."""
        idx = batch["index"] * self.eval_batch_size + jnp.arange(self.eval_batch_size)
        valid = (idx < self.num_test).astype(jnp.float32)
        idx = jax.lax.with_sharding_constraint(jnp.minimum(idx, self.num_test - 1), batch_sharding(self.mesh))
        images = normalize(batch["x"][idx], self.mean, self.std)
        labels = batch["y"][idx]
        shuffle_rng, encoding_rng = jax.random.split(rng)
        shuffling = (
            nn.intercept_methods(shuffle_time_interceptor(shuffle_rng, self.model.spiking.T))
            if self.config.shuffle_time
            else contextlib.nullcontext()
        )
        with shuffling, nn.intercept_methods(energy.operations_interceptor(self.eval_batch_size)):
            logits, sown = self.model.apply(
                variables,
                images,
                train=False,
                mutable=["firing_rates", energy.COLLECTION],
                rngs={"encoding": encoding_rng},
            )
        count = jnp.sum(valid)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        return {
            "count": count,
            "loss": jnp.sum(loss * valid),
            "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * valid),
            "firing_rates": {k: v * count for k, v in firing_rates(sown.get("firing_rates", {}), valid).items()},
            "operations": energy.operation_sums(sown[energy.COLLECTION], valid),
        }

    def summarize(self, sums: dict) -> dict:
        count = float(sums["count"])
        rates = {k: float(v) / count for k, v in sums["firing_rates"].items()}
        return {
            "accuracy": float(sums["correct"]) / count,
            "loss": float(sums["loss"]) / count,
            "firing_rates": rates,
            "mean_firing_rate": float(np.mean(list(rates.values()))) if rates else None,
            **energy.summary(sums["operations"]),
        }

    def load_variables(self, path: str) -> dict:
        """Variables of an official QKFormer PyTorch state dict (``.pth``, or ``.npz`` of its arrays)."""
        from snnjax.models.convert import load_official_qkformer

        return dict(load_official_qkformer(path, self.model))


def setup(config: ClassificationConfig) -> ClassificationTask:
    """Devices, data and model of ``config``, as a task."""
    mesh = make_mesh(config.loop)
    data = load_data(config)
    return ClassificationTask(config, data, build_model(config.model, data.num_classes), mesh)
