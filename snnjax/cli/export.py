"""Export a trained run's weights as the PyTorch state_dict of the reference code.

A QKFormer run becomes the official QKFormer's state_dict (``model.load_state_dict(torch.load(FILE))`` in
the official repository, with its ``--T`` and model size); this needs the configuration the official model
has: direct encoding with the learnable conv (LC) and standard LIF neurons
(``cifar.py --encoding=direct --neuron=lif``). A YOLOv5n run trained with ``--mode=ann`` becomes an
ultralytics YOLOv5 v7.0 state_dict. The evaluation weights are exported (the EMA's when the run kept one).

FILE ending in .pth or .pt is written with torch.save (needs torch); .npz holds the same arrays for
numpy, with no torch needed. An existing FILE is never replaced unless --overwrite is given.

Examples:
    python experiments/export.py --workdir runs/cifar/RUN --out qkformer.pth
    python experiments/export.py --workdir runs/voc/RUN --out yolov5n_sd.npz
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from snnjax.checks import InvalidValue
from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.checkpoint import CheckpointError
from snnjax.engine.flags import OneLineErrors
from snnjax.engine.rundir import RunFolderError
from snnjax.models.convert import export_official_qkformer
from snnjax.models.yolo_weights import export_ultralytics_yolov5n
from snnjax.trained import load_trained

PROG = "export.py"
EXPORTERS = {"classification": export_official_qkformer, "detection": export_ultralytics_yolov5n}
SUFFIXES = (".pth", ".pt", ".npz")


def save_state_dict(state: dict[str, np.ndarray], path: str) -> None:
    """Writes ``state`` to ``path``: torch.save of tensors for .pth/.pt, numpy.savez for .npz."""
    if path.endswith(".npz"):
        np.savez(path, **state)
        return
    try:
        import torch
    except ImportError:
        raise InvalidValue("out", path, "a .npz file (writing .pth needs torch, which is not installed)") from None
    torch.save({name: torch.from_numpy(np.array(value)) for name, value in state.items()}, path)


def main(argv: list[str] | None = None) -> str:
    """Exports the run's weights; returns the file written."""
    parser = OneLineErrors(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", required=True, metavar="RUN", help="a run folder, its checkpoints or a step")
    parser.add_argument("--out", required=True, metavar="FILE", help="the state_dict file: .pth, .pt or .npz")
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    args = parser.parse_args(argv)
    if not args.out.endswith(SUFFIXES):
        parser.error(f"argument --out: got {args.out!r}; accepted: a file name ending in {', '.join(SUFFIXES)}")
    if os.path.exists(args.out) and not args.overwrite:
        parser.error(f"argument --out: got {args.out!r}; accepted: a file that does not exist yet (or --overwrite)")
    try:
        trained = load_trained(args.workdir)
        state = EXPORTERS[trained.task](trained.variables, trained.model)
        save_state_dict(state, args.out)
    except (InvalidValue, FileNotFoundError, RunFolderError, CheckpointError) as e:
        sys.exit(f"{PROG}: error: {e}")
    print(f"{PROG}: {len(state)} entries of {trained.checkpoint} -> {args.out}")
    return args.out


if __name__ == "__main__":
    restart_with_hugepages()
    main()
