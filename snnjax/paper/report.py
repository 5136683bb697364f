"""The reproduction report: the paper's tables with our runs beside the paper's numbers, energy, and
figures, all read from the run folders under ``<workdir>/runs`` (never from numbers typed in).

A cell shows the mean ± sample standard deviation over the seeds whose run finished, and how many; a cell
without a finished run says so ("missing"), it is never a zero.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Sequence

import numpy as np

from snnjax.engine.rundir import RunFolder
from snnjax.equivalence import constant_input_patterns, markdown_table
from snnjax.paper.grid import QUICK_DATASETS, RESULTS, SEEDS, Cell, Setting, Table

REPORT, FIGURES = "report.md", "figures"
MISSING = "missing"


def finished(workdir: str, setting: Setting, source: str = RESULTS) -> dict[int, dict]:
    """Seed -> the ``source`` JSON of every finished run of ``setting`` in ``workdir/runs``, by seed."""
    found = {}
    for folder in sorted(glob.glob(os.path.join(workdir, "runs", f"{glob.escape(setting.name)}_s*"))):
        match = re.fullmatch(r".*_s(-?\d+)", folder)
        data = RunFolder(folder).read_json(source) if match else None
        if data is not None:
            found[int(match.group(1))] = data
    return found


def cell_values(workdir: str, cell: Cell) -> list[float]:
    """The cell's metric of every finished run (in the paper's unit: % for accuracies)."""
    scale = 100.0 if cell.percent else 1.0
    runs = finished(workdir, cell.setting, cell.source)
    return [scale * float(r[cell.metric]) for _, r in sorted(runs.items()) if r.get(cell.metric) is not None]


def mean_std(values: Sequence[float], digits: int) -> str:
    """``mean ± std (n=N)`` with the sample standard deviation; ``missing`` for no value."""
    if not values:
        return MISSING
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f} (n=1)"
    return f"{mean:.{digits}f} ± {float(np.std(values, ddof=1)):.{digits}f} (n={len(values)})"


def _digits(cell: Cell) -> int:
    return 2 if cell.percent else 3


def table_markdown(table: Table, workdir: str) -> str:
    """The table in the paper's layout, each metric column as ours | paper."""
    head = ["", *(("LT", "LC", "SG") if table.switches else ())]
    for column in table.columns:
        head += [f"{column} (ours)", "paper"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, cells in table.rows:
        row = [label]
        if table.switches:
            s = next(c for c in cells if c is not None).setting
            row += ["✓" if on else "" for on in (s.lt, s.lc, s.sg)]
        for cell in cells:
            if cell is None:
                row += ["", ""]
            else:
                paper = "" if cell.paper is None else f"{cell.paper:.{_digits(cell)}f}"
                row += [mean_std(cell_values(workdir, cell), _digits(cell)), paper]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _settings(selected: Sequence[Table]) -> list[Setting]:
    return list({c.setting.name: c.setting for t in selected for c in t.cells if c.source == RESULTS}.values())


def _mean(runs: dict[int, dict], key: str) -> float | None:
    values = [float(r[key]) for r in runs.values() if isinstance(r.get(key), int | float)]
    return float(np.mean(values)) if values else None


def _number(value: float | None, fmt: str) -> str:
    return MISSING if value is None or not math.isfinite(value) else format(value, fmt)


def energy_markdown(selected: Sequence[Table], workdir: str) -> str:
    """Per setting: runs found, MACs, accumulates, energy per test image and mean firing rate."""
    lines = [
        "| run | n | MACs | ACs (synaptic ops) | energy per image (µJ) | mean firing rate |",
        "|---|---|---|---|---|---|",
    ]
    for setting in _settings(selected):
        runs = finished(workdir, setting)
        energy = _mean(runs, "energy_mj")
        lines.append(
            f"| {setting.name} | {len(runs)} | {_number(_mean(runs, 'mac_ops'), '.4g')} | "
            f"{_number(_mean(runs, 'ac_ops'), '.4g')} | {_number(None if energy is None else energy * 1e3, '.4g')} "
            f"| {'—' if setting.encoding is None else _number(_mean(runs, 'mean_firing_rate'), '.4f')} |"
        )
    return "\n".join(lines)


def _history(workdir: str, setting: Setting, seed: int) -> list[dict]:
    return RunFolder(os.path.join(workdir, "runs", f"{setting.name}_s{seed}")).history(math.inf)


def _label(setting: Setting) -> str:
    return setting.name.split("_", 1)[1]


def _figure_curves(selected: Sequence[Table], workdir: str, figures: str) -> list[str]:
    paths = []
    for table in selected:
        for script, metric in (("cifar", "accuracy"), ("voc", "map50")):
            histories = {}
            for cell in table.cells:
                if cell.source == RESULTS and cell.setting.script == script:
                    runs = finished(workdir, cell.setting)
                    if runs:
                        histories[cell.setting.name] = [_history(workdir, cell.setting, s) for s in sorted(runs)]
            if histories:
                from snnjax import plots as fig

                name = f"curves_{table.key}_{script}.png"
                fig.training_curves(histories, metric, os.path.join(figures, name))
                paths.append((f"Training curves, {table.title.split(':')[0]} ({script})", name))
    return paths


def _spiking_runs(selected: Sequence[Table], workdir: str, dataset: str) -> dict[str, tuple[Setting, int]]:
    """One finished run per encoding among the selected tables' cells of ``dataset``: the setting with the
    most of the paper's method (LT, LC, SG, learnable LIF, T = 4), at the first of :data:`SEEDS` found."""
    candidates: dict[str, list[Setting]] = {}
    for cell in (c for t in selected for c in t.cells):
        s = cell.setting
        if s.dataset == dataset and s.encoding is not None and cell.source == RESULTS:
            candidates.setdefault(s.encoding, []).append(s)
    chosen: dict[str, tuple[Setting, int]] = {}
    for encoding, settings in candidates.items():
        ranked = sorted(settings, key=lambda s: (s.lt, s.lc, s.sg, s.neuron == "learnable", s.T == 4), reverse=True)
        for setting in ranked:
            runs = finished(workdir, setting)
            if runs:
                chosen[encoding] = (setting, min(runs, key=lambda seed: (SEEDS + (seed,)).index(seed)))
                break
    return chosen


def _figure_spikes(selected: Sequence[Table], workdir: str, figures: str) -> list[tuple[str, str]]:
    from snnjax import plots as fig
    from snnjax.paper import probe

    runs = _spiking_runs(selected, workdir, "cifar10")
    if not runs:
        return []
    paths = []
    heatmaps = {f"{_label(s)} s{seed}": _history(workdir, s, seed) for s, seed in runs.values()}
    rates = {k: [r["eval_firing_rates"] for r in h if r.get("eval_firing_rates")] for k, h in heatmaps.items()}
    rates = {k: v for k, v in rates.items() if v}
    if rates:
        paths.append(("Firing rate per layer and epoch", "firing_heatmaps.png"))
        fig.firing_heatmaps(rates, os.path.join(figures, paths[-1][1]))
        paths.append(("Firing rate per layer at the end of training", "firing_by_layer.png"))
        fig.firing_by_layer({k: v[-1] for k, v in rates.items()}, os.path.join(figures, paths[-1][1]))
    spikes, schedules, image = {}, {}, None
    for setting, seed in runs.values():
        run = probe.load_run(os.path.join(workdir, "runs", f"{setting.name}_s{seed}"), setting.script)
        images, inputs = probe.test_images(run, 1)
        image = images[0]
        spikes[_label(setting)] = probe.encoder_spikes(run, inputs)[:, 0]
        schedule = probe.thresholds(run)
        if schedule is not None:
            schedules[_label(setting)] = schedule
    paths.append(("The encoders' spikes for one test image", "encoder_spikes.png"))
    fig.spike_rasters(image, spikes, os.path.join(figures, paths[-1][1]))
    if schedules:
        paths.append(("Threshold schedule θ_t after training and at initialisation", "thresholds.png"))
        fig.threshold_schedules(schedules, os.path.join(figures, paths[-1][1]))
    return paths


def _figure_detection(selected: Sequence[Table], workdir: str, figures: str) -> list[tuple[str, str]]:
    from snnjax import plots as fig
    from snnjax.paper import probe

    runs = _spiking_runs(selected, workdir, "voc")
    if not runs:
        return []
    setting, seed = runs.get("phase", next(iter(runs.values())))
    folder = os.path.join(workdir, "runs", f"{setting.name}_s{seed}")
    results = RunFolder(folder).read_json(RESULTS)
    paths = []
    if results.get("pr_curves"):
        paths.append((f"Precision–recall per class at IoU 0.5, {setting.name} s{seed}", "pr_curves.png"))
        fig.pr_curves(results["pr_curves"], os.path.join(figures, paths[-1][1]))
    run = probe.load_run(folder, "voc")
    images, inputs = probe.test_images(run, 4)
    boxes = probe.detections(run, inputs)
    paths.append((f"Predicted boxes (score ≥ 0.25), {setting.name} s{seed}", "detections.png"))
    fig.boxes_on_images(images, boxes, run.task.dataset.class_names, os.path.join(figures, paths[-1][1]))
    return paths


def _scale_note(scale: str) -> str:
    if scale == "full":
        return "Scale **full**: the paper's datasets and recipe."
    stand_ins = "; ".join(f"{name} → {what}" for name, what in QUICK_DATASETS.items())
    return (
        "Scale **quick**: every dataset is a synthetic stand-in (" + stand_ins + ") and the classifier is "
        "QKFormer-2-32 trained for a few epochs, so our numbers show the pipeline and the trends at toy scale; "
        "they are not comparable with the paper's."
    )


def write_report(workdir: str, selected: Sequence[Table], scale: str) -> str:
    """Writes ``workdir/report.md`` and its figures (``workdir/figures``); returns the report's path."""
    figures = os.path.join(workdir, FIGURES)
    os.makedirs(figures, exist_ok=True)
    parts = [
        "# Reproduction report",
        _scale_note(scale),
        "Ours: mean ± sample standard deviation over the seeds whose run finished (n); accuracies in %, "
        f"mAP@0.5 under YOLOv5's rule; '{MISSING}': no finished run yet.",
    ]
    for table in selected:
        parts += [f"## {table.title}", table_markdown(table, workdir)]
        if table.note:
            parts.append(table.note)
        if table.key == "B":
            patterns = constant_input_patterns(T=4, tau=2.0, v_threshold=1.0, v_reset=None)
            parts += [
                "Table B.1: every spike pattern of a soft-reset LIF (τ = 2, V_th = 1, T = 4) under a constant "
                "input x, computed exactly (`python experiments/equivalence.py`):",
                markdown_table(patterns),
            ]
    parts += [
        "## Energy and firing per test image",
        "ACs are accumulates of spike inputs (firing rate × fan-out MACs × T), MACs the multiply-accumulates "
        "of non-spike inputs (the image, the ANN); energy = 4.6 pJ × MACs + 0.9 pJ × ACs (45 nm). "
        "Means over the seeds found (n).",
        energy_markdown(selected, workdir),
        "## Figures",
    ]
    shown = (
        _figure_curves(selected, workdir, figures)
        + _figure_spikes(selected, workdir, figures)
        + _figure_detection(selected, workdir, figures)
    )
    parts += [f"### {title}\n\n![{title}]({FIGURES}/{name})" for title, name in shown] or ["No finished run yet."]
    path = os.path.join(workdir, REPORT)
    RunFolder(workdir).write_text(REPORT, "\n\n".join(parts) + "\n")
    return path
