"""The runs behind the paper's tables, the paper's own numbers, and the commands that make them.

A :class:`Setting` is one training configuration without its seed (dataset, encoding with its LT/LC/SG
switches, neuron, T); a :class:`Table` places settings in the paper's rows and columns with the paper's
value of each cell. A :class:`Job` is one setting at one seed at one scale: the command of the
experiment script (``experiments/cifar.py`` or ``voc.py``) that trains it in its own run folder, plus the
evaluations a table needs afterwards (the time-shuffling test). Settings shared by several tables (the
standard-LIF TTFS+LT+LC+SG run is Table 1's last row and Table A.1's TTFS row) run once.

Scales: ``full`` is the paper's datasets and recipe (each script's defaults); ``quick`` swaps every
dataset for a small synthetic one and the model for a small one, so the whole grid runs on a CPU.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Sequence

from snnjax.checks import InvalidValue

SEEDS = (35, 1000, 0)  # Appendix C
SCALES = ("quick", "full")
SCRIPTS = {"cifar": "experiments/cifar.py", "voc": "experiments/voc.py"}
RESULTS, SHUFFLED = "results.json", "eval_shuffle_time.json"

# What each dataset becomes at each scale: the flags of its script.
DATASET_FLAGS = {
    "full": {
        "cifar10": ("--dataset=cifar10",),
        "cifar100": ("--dataset=cifar100",),
        "voc": ("--dataset=voc",),
    },
    "quick": {
        "cifar10": ("--dataset=synthetic", "--synthetic_classes=4"),
        "cifar100": ("--dataset=synthetic", "--synthetic_classes=8"),
        "voc": ("--dataset=synthetic", "--synthetic_classes=3"),
    },
}
# The rest of the quick recipe, per script (README, "Reproducing the paper", says how it was chosen).
QUICK_FLAGS = {
    "cifar": (
        "--model=2-32",
        "--image_size=8",
        "--augment=none",
        "--synthetic_train=1536",
        "--synthetic_test=256",
        "--synthetic_seed=0",
        "--epochs=3",
        "--batch_size=64",
        "--lr=0.01",
        "--bn_scale=2",
        "--unroll=1",
        "--keep=1",
        "--no-progress",
    ),
    "voc": (
        "--img_size=32",
        "--synthetic_train=64",
        "--synthetic_test=32",
        "--synthetic_seed=0",
        "--epochs=2",
        "--batch_size=16",
        "--unroll=1",
        "--keep=1",
        "--no-progress",
    ),
}
QUICK_DATASETS = {
    "cifar10": "synthetic, 4 classes, 8×8",
    "cifar100": "synthetic, 8 classes, 8×8",
    "voc": "synthetic detection, 3 classes, 32×32",
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One training configuration: ``dataset`` (cifar10, cifar100 or voc), ``encoding`` (None: the ANN
    YOLOv5n), the encoder switches, ``lc_channels`` (None: the model's stem width), ``neuron`` and ``T``."""

    dataset: str
    encoding: str | None
    lt: bool = True
    lc: bool = True
    sg: bool = True
    neuron: str = "learnable"
    T: int = 4
    lc_channels: int | None = None

    @property
    def script(self) -> str:
        return "voc" if self.dataset == "voc" else "cifar"

    @property
    def name(self) -> str:
        """Run folder stem: ``<dataset>_<encoding>[+lt][+lc][+sg][_lc<n>]_T<T>_<neuron>`` or ``voc_ann``."""
        if self.encoding is None:
            return f"{self.dataset}_ann"
        switches = "".join(f"+{n}" for n, on in (("lt", self.lt), ("lc", self.lc), ("sg", self.sg)) if on)
        width = f"_lc{self.lc_channels}" if self.lc_channels else ""
        return f"{self.dataset}_{self.encoding}{switches}{width}_T{self.T}_{self.neuron}"

    def flags(self) -> tuple[str, ...]:
        """The model flags of its script."""
        if self.encoding is None:
            return ("--mode=ann",)
        flags = [f"--encoding={self.encoding}"]
        flags += [f"--{'' if on else 'no-'}{n}" for n, on in (("lt", self.lt), ("lc", self.lc), ("sg", self.sg))]
        flags += [f"--neuron={self.neuron}", f"--T={self.T}"]
        if self.lc_channels:
            flags.append(f"--lc_channels={self.lc_channels}")
        if self.script == "voc":
            flags.append("--mode=snn")
        return tuple(flags)


@dataclasses.dataclass(frozen=True)
class Cell:
    """A table cell: ``metric`` of ``setting``'s runs read from their ``source`` file, and the paper's
    value (``percent``: the metric is a fraction the paper prints in %)."""

    setting: Setting
    paper: float | None
    metric: str = "accuracy"
    source: str = RESULTS
    percent: bool = True


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of the paper: ``rows`` of (label, one :class:`Cell` or None per column). ``switches``:
    show each row's LT/LC/SG marks (Table 1)."""

    key: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Cell | None, ...]], ...]
    switches: bool = False
    note: str = ""

    @property
    def cells(self) -> list[Cell]:
        return [c for _, cells in self.rows for c in cells if c is not None]


def _cifar(dataset: str, encoding: str, paper: float, **switches) -> Cell:
    return Cell(Setting(dataset, encoding, **switches), paper)


def _voc(encoding: str | None, paper: float, **switches) -> Cell:
    return Cell(Setting("voc", encoding, **switches), paper, metric="map50", percent=False)


ENCODINGS = (("Direct", "direct"), ("Rate+Conv", "rate"), ("Phase+Conv", "phase"), ("TTFS+Conv", "ttfs"))
TABLE2 = {  # learnable LIF: CIFAR-10, CIFAR-100 top-1 (%), VOC mAP@0.5
    "direct": (95.60, 77.90, 0.452),
    "rate": (95.62, 78.08, 0.444),
    "phase": (95.64, 78.56, 0.467),
    "ttfs": (95.26, 77.93, 0.460),
}
TABLE_A1 = {  # standard LIF
    "direct": (95.37, 78.35, 0.451),
    "rate": (95.46, 78.08, 0.442),
    "phase": (95.56, 77.71, 0.451),
    "ttfs": (95.23, 77.82, 0.439),
}
RAW = dict(lt=False, lc=False, sg=False, neuron="lif")  # an encoding of the raw image, standard LIF
DIRECT = dict(lt=False, sg=False)  # direct encoding has no encoder threshold and no encoder spike: LC only


def _encoding_grid(values: dict, neuron: str) -> tuple:
    rows = []
    for label, kind in ENCODINGS:
        switches = {**(DIRECT if kind == "direct" else {}), "neuron": neuron}
        cells = (
            _cifar("cifar10", kind, values[kind][0], **switches),
            _cifar("cifar100", kind, values[kind][1], **switches),
            _voc(kind, values[kind][2], **switches),
        )
        rows.append((label, cells))
    return tuple(rows)


TABLES = {
    "1": Table(
        "1",
        "Table 1: ablation of TTFS on CIFAR-10 (QKFormer-3-256, T = 4, standard LIF), with rate and phase",
        ("CIFAR-10 Acc@1",),
        (
            ("TTFS", (_cifar("cifar10", "ttfs", 83.22, **RAW),)),
            ("TTFS+LT", (_cifar("cifar10", "ttfs", 83.44, **{**RAW, "lt": True}),)),
            ("TTFS+LT+LC", (_cifar("cifar10", "ttfs", 94.32, **{**RAW, "lt": True, "lc": True}),)),
            ("TTFS+LT+LC+SG", (_cifar("cifar10", "ttfs", 95.23, neuron="lif"),)),
            ("Rate", (_cifar("cifar10", "rate", 86.67, **RAW),)),
            ("Phase", (_cifar("cifar10", "phase", 87.77, **RAW),)),
        ),
        switches=True,
        note="Rate and phase encode the raw image like the TTFS row (no LT, LC or SG): the paper reports them "
        "'under the same four-step setting' without naming their switches. Without SG no gradient reaches the "
        "encoder's θ₀ and λ, so TTFS+LT trains exactly as TTFS here (the same numbers).",
    ),
    "2": Table(
        "2",
        "Table 2: encodings with the learnable LIF (LT+LC+SG; direct: LC)",
        ("CIFAR-10 Acc@1", "CIFAR-100 Acc@1", "VOC mAP@0.5"),
        _encoding_grid(TABLE2, "learnable"),
    ),
    "A1": Table(
        "A1",
        "Table A.1: encodings with the standard LIF, and the ANN YOLOv5n",
        ("CIFAR-10 Acc@1", "CIFAR-100 Acc@1", "VOC mAP@0.5"),
        (*_encoding_grid(TABLE_A1, "lif"), ("ANN YOLOv5n", (None, None, _voc(None, 0.668)))),
    ),
    "B": Table(
        "B",
        "Appendix B: temporal shuffling test (direct encoding, standard LIF, CIFAR-10)",
        ("Acc@1", "Acc@1, spikes shuffled over time"),
        (
            (
                "Direct (LIF)",
                (
                    _cifar("cifar10", "direct", 95.37, **DIRECT, neuron="lif"),
                    Cell(Setting("cifar10", "direct", **DIRECT, neuron="lif"), 95.01, source=SHUFFLED),
                ),
            ),
        ),
        note="Every neuron's spike train is permuted over time at evaluation (its spike count kept).",
    ),
    "discussion": Table(
        "discussion",
        "Discussion: a 3-channel LC conv under TTFS, and direct encoding at T = 2 vs T = 4 (learnable LIF)",
        ("CIFAR-10 Acc@1", "VOC mAP@0.5"),
        (
            ("TTFS, raw image (Table 1)", (_cifar("cifar10", "ttfs", 83.22, **RAW), None)),
            ("TTFS+LC, 3 channels", (_cifar("cifar10", "ttfs", 86.43, **{**RAW, "lc": True}, lc_channels=3), None)),
            (
                "TTFS+LC+SG, 3 channels",
                (_cifar("cifar10", "ttfs", 93.71, **{**RAW, "lc": True, "sg": True}, lc_channels=3), None),
            ),
            ("Direct, T = 4", (_cifar("cifar10", "direct", 95.60, **DIRECT), _voc("direct", 0.452, **DIRECT))),
            (
                "Direct, T = 2",
                (_cifar("cifar10", "direct", 94.89, **DIRECT, T=2), _voc("direct", 0.365, **DIRECT, T=2)),
            ),
        ),
        note="The paper does not say whether the 3-channel runs use LT; they run without it here.",
    ),
}
TABLE_NAMES = (*TABLES, "all")


def tables(name: str) -> list[Table]:
    """The tables ``name`` selects (a key of :data:`TABLES`, or ``all``)."""
    if name not in TABLE_NAMES:
        raise InvalidValue("table", name, ", ".join(TABLE_NAMES))
    return list(TABLES.values()) if name == "all" else [TABLES[name]]


@dataclasses.dataclass(frozen=True)
class Job:
    """One setting at one seed: ``argv`` of its ``script`` trains it in ``workdir``; each of ``evals``
    (argv) evaluates the finished run afterwards. Done when every file of ``outputs`` is in ``workdir``."""

    name: str
    setting: Setting
    seed: int
    script: str
    workdir: str
    argv: tuple[str, ...]
    evals: tuple[tuple[str, ...], ...]
    outputs: tuple[str, ...]

    def command(self) -> str:
        """The job as one shell line (its evaluations joined with ``&&``)."""
        runs = (self.argv, *self.evals)
        return " && ".join(shlex.join(("python", self.script, *argv)) for argv in runs)

    def done(self) -> bool:
        return all(os.path.isfile(os.path.join(self.workdir, f)) for f in self.outputs)


def jobs(
    selected: Sequence[Table],
    scale: str,
    workdir: str,
    seeds: Sequence[int] = SEEDS,
    extra: dict[str, Sequence[str]] | None = None,
) -> list[Job]:
    """The jobs behind ``selected`` tables at ``scale`` under ``workdir/runs``, one per setting and seed,
    in a fixed order: every setting (as the tables first name them) at the first seed, then at the next
    seed, so a partial grid fills every cell once first. ``extra``: more flags per script
    (``cifar``/``voc``), appended to every run of it."""
    if scale not in SCALES:
        raise InvalidValue("scale", scale, ", ".join(SCALES))
    extra = extra or {}
    settings: dict[str, Setting] = {}
    sources: dict[str, set[str]] = {}
    for table in selected:
        for cell in table.cells:
            settings.setdefault(cell.setting.name, cell.setting)
            sources.setdefault(cell.setting.name, set()).add(cell.source)
    found = []
    for seed in seeds:
        for name, setting in settings.items():
            script = setting.script
            base = (
                *DATASET_FLAGS[scale][setting.dataset],
                *(QUICK_FLAGS[script] if scale == "quick" else ()),
                *setting.flags(),
            )
            run = os.path.join(workdir, "runs", f"{name}_s{seed}")
            argv = (*base, f"--seed={seed}", f"--workdir={run}", *extra.get(script, ()))
            evals = (("--resume", run, "--eval_only", "--shuffle_time"),) if SHUFFLED in sources[name] else ()
            outputs = tuple(sorted(sources[name]))
            found.append(Job(f"{name}_s{seed}", setting, seed, SCRIPTS[script], run, argv, evals, outputs))
    return found


def shard(items: Sequence, index: int, count: int) -> list:
    """The ``index``-th (from 0) of ``count`` interleaved slices of ``items``: every item is in exactly
    one slice, and the slices' sizes differ by at most one."""
    if not (isinstance(count, int) and count >= 1):
        raise InvalidValue("shard", f"{index}/{count}", "i/n with n >= 1")
    if not (isinstance(index, int) and 0 <= index < count):
        raise InvalidValue("shard", f"{index}/{count}", f"i/n with 0 <= i < {count}")
    return list(items[index::count])
