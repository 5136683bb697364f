"""The settings of the generic loop, which every task's config holds as its ``loop`` section."""

from __future__ import annotations

import dataclasses

from snnjax.checks import BOOL, EXISTING_PATH, TEXT, integer, optional
from snnjax.settings import Settings, setting


@dataclasses.dataclass(frozen=True)
class LoopConfig(Settings):
    """Epochs, batches, seed, evaluation, checkpoints, devices and processes of a run.

    Batch sizes are global (over all devices and processes). ``extended_from`` records the epoch
    targets a run had before ``--extend`` raised ``epochs``.
    """

    workdir: str | None = setting(
        None, "run folder", accepts=optional(TEXT, "named after the settings, under runs/"), affects_results=False
    )
    epochs: int = setting(1, "training epochs in all", accepts=integer(1))
    batch_size: int = setting(32, "global batch size (all devices)", accepts=integer(1))
    eval_batch_size: int = setting(
        64,
        "global evaluation batch size (evaluation counts real examples only, so it changes no result)",
        accepts=integer(1),
        affects_results=False,
    )
    seed: int = setting(0, "random seed: initialisation, data order, augmentation", accepts=integer())
    eval_every: int = setting(1, "evaluate every N epochs (and after the last)", accepts=integer(1))
    init_from: str | None = setting(
        None,
        "start from this orbax checkpoint (a workdir, its checkpoints folder or a step) or a weights file the "
        "task imports",
        accepts=optional(EXISTING_PATH, "fresh variables"),
    )
    eval_only: bool = setting(
        False,
        "evaluate the workdir's last checkpoint (or --init_from) instead of training",
        accepts=BOOL,
        affects_results=False,
    )
    keep: int = setting(
        2, "recent checkpoints to keep (the best is kept too)", accepts=integer(1), affects_results=False
    )
    log_every: int = setting(10, "update the progress bar every N steps", accepts=integer(1), affects_results=False)
    progress: bool = setting(True, "show progress bars", accepts=BOOL, affects_results=False)
    tensorboard: bool = setting(
        False,
        "also write each epoch's metrics as TensorBoard scalars in WORKDIR/tensorboard (needs tensorboardX)",
        accepts=BOOL,
        affects_results=False,
    )
    num_devices: int | None = setting(
        None, "devices to use", accepts=optional(integer(1), "all"), affects_results=False
    )
    distributed: bool = setting(
        False, "multi-process run: call jax.distributed.initialize", accepts=BOOL, affects_results=False
    )
    coordinator_address: str | None = setting(
        None, "for --distributed: host:port of process 0", accepts=optional(TEXT, "detected"), affects_results=False
    )
    num_processes: int | None = setting(
        None, "for --distributed: processes in all", accepts=optional(integer(1), "detected"), affects_results=False
    )
    process_id: int | None = setting(
        None, "for --distributed: this process's index", accepts=optional(integer(0), "detected"), affects_results=False
    )
    extended_from: tuple[int, ...] = setting(
        (), "earlier epoch targets of an extended run", flag=False, affects_results=False
    )
