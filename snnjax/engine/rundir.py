"""A run's folder: everything about a run lives in its workdir.

    config.json      the experiment's config (settings), checked on every resume
    model.json       what predicting needs besides the config (the task's ``model_info``: class names,
                     input size, normalisation), written when a run starts
    checkpoints/     orbax checkpoints (``snnjax.engine.checkpoint``)
    metrics.jsonl    one record per finished epoch
    results.json     written once, when the run finishes (a finished run is never trained again)
    results_<N>epochs.json   the results of a run before ``--extend`` took it past N epochs
    eval*.json       evaluation-only runs
    run_token        multi-process runs: written by process 0, read back by the others (same folder?)

Only process 0 writes, and every write replaces the file atomically (a temporary file renamed over
it), so a kill never leaves a half-written file. Reads name the file when it cannot be parsed.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

import jax

from snnjax.engine.sharding import barrier, is_main, processes_differing
from snnjax.settings import differences, flatten

CONFIG, METRICS, RESULTS, CHECKPOINTS = "config.json", "metrics.jsonl", "results.json", "checkpoints"
TENSORBOARD = "tensorboard"
MODEL_INFO, MODEL_INFO_FORMAT = "model.json", 1
RUN_TOKEN = "run_token"  # multi-process runs: process 0's token, which every process must read back


class ConfigMismatchError(ValueError):
    """A workdir holds a run whose config differs from the one given."""


class RunFolderError(ValueError):
    """A file of the run folder cannot be read or written."""


class RunFolder:
    """The files of the run in ``workdir``."""

    def __init__(self, workdir: str):
        self.workdir = workdir

    def path(self, name: str) -> str:
        return os.path.join(self.workdir, name)

    def exists(self, name: str) -> bool:
        return os.path.exists(self.path(name))

    def read_json(self, name: str) -> Any | None:
        """The JSON content of ``name``, None when absent; ValueError naming the file when unreadable."""
        path = self.path(name)
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{path}: not readable as JSON ({e}); move it away to start this run afresh") from None

    def write_text(self, name: str, text: str) -> None:
        """Replaces ``name`` with ``text`` atomically (process 0 only)."""
        if not is_main():
            return
        path = self.path(name)
        try:
            os.makedirs(self.workdir, exist_ok=True)
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
        except OSError as e:
            raise RunFolderError(f"{path}: cannot be written ({e.strerror or e}); use a writable --workdir") from None

    def write_json(self, name: str, content: Any) -> None:
        self.write_text(name, json.dumps(content, indent=2, sort_keys=True, allow_nan=False) + "\n")

    def save_model_info(self, info: dict) -> None:
        """Saves ``info`` (JSON-ready) with the format version as :data:`MODEL_INFO` when absent; raises
        :class:`RunFolderError` when the saved one differs (the data changed under the run)."""
        content = json.loads(json.dumps({"format": MODEL_INFO_FORMAT, **info}))
        saved = self.read_json(MODEL_INFO)
        if saved is None:
            self.write_json(MODEL_INFO, content)
        elif saved != content:
            changed = sorted(k for k in saved.keys() | content.keys() if saved.get(k) != content.get(k))
            raise RunFolderError(
                f"{self.path(MODEL_INFO)}: the run was started with other {', '.join(changed)} than its data gives "
                "now; restore that data, or use another --workdir"
            )

    def check_config(self, config: dict, ignored: frozenset[str], write: bool = True) -> dict | None:
        """The saved config, or None (then ``config`` is saved when ``write``). Raises
        :class:`ConfigMismatchError` naming every differing setting not in ``ignored``, unless ``config``
        extends the saved run (:func:`extends`)."""
        saved = self.read_json(CONFIG)
        if saved is None:
            if write:
                self.write_json(CONFIG, config)
            return None
        diff = differences(saved, config, ignored)
        if diff and write and extends(saved, config) and all(d.startswith("loop.epochs:") for d in diff):
            self.extend(saved, config)
        elif diff:
            raise ConfigMismatchError(
                f"workdir {self.workdir!r} holds a run with another config; differing settings: {'; '.join(diff)}. "
                "Use another --workdir, or --resume WORKDIR (with --extend --epochs N for more epochs)."
            )
        return saved

    def extend(self, saved: dict, config: dict) -> None:
        """Records an extension: keeps the finished run's results as ``results_<N>epochs.json``, saves ``config``."""
        epochs = saved["loop"]["epochs"]
        results = self.read_json(RESULTS)
        if results is not None:
            self.write_json(f"results_{epochs}epochs.json", results)
            if is_main():
                os.remove(self.path(RESULTS))
        self.write_json(CONFIG, config)

    def history(self, last_epoch: int) -> list[dict]:
        """The ``metrics.jsonl`` records of epochs ``<= last_epoch``, the file rewritten without later ones
        (written before an interruption that lost their checkpoint), so each epoch appears once."""
        path = self.path(METRICS)
        if not os.path.exists(path):
            return []
        records = []
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError as e:
                        raise RunFolderError(f"{path}, line {number}: not JSON ({e}); move it away") from None
        kept = [r for r in records if r["epoch"] <= last_epoch]
        if len(kept) != len(records):
            self.write_history(kept)
        return kept

    def write_history(self, records: list[dict]) -> None:
        """Replaces ``metrics.jsonl`` with ``records``, one JSON line each."""
        self.write_text(METRICS, "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in records))


def check_processes(folder: RunFolder, config: dict, ignored: frozenset[str]) -> None:
    """In a multi-process run, before anything waits on the others: every process must see process 0's run
    folder (process 0 writes a fresh token there that the others read back) and run the same settings
    (those not in ``ignored``). Otherwise every process raises :class:`RunFolderError` naming the others, where
    they would all have hung in the first checkpoint."""
    if jax.process_count() == 1:
        return
    if is_main():
        folder.write_text(RUN_TOKEN, uuid.uuid4().hex)
    barrier("snnjax: run token written")
    try:
        with open(folder.path(RUN_TOKEN)) as f:
            token = f.read()
    except OSError:
        token = ""
    settings = json.dumps({k: v for k, v in flatten(config).items() if k not in ignored}, sort_keys=True)
    other_folder, other_settings = processes_differing([token.encode(), settings.encode()])
    if other_folder:
        raise RunFolderError(
            f"processes {other_folder} do not see the run folder of process 0 ({folder.workdir}): every process "
            "needs the same --workdir, on a file system they all share"
        )
    if other_settings:
        raise RunFolderError(
            f"processes {other_settings} run other settings than process 0: give every process the same flags"
        )


def extends(saved: dict, config: dict) -> bool:
    """Whether ``config`` is ``saved`` extended to more epochs on purpose (``--extend``): its
    ``loop.extended_from`` is the saved one plus the saved ``loop.epochs``, and its epochs are more."""
    old, new = saved.get("loop", {}), config["loop"]
    return new["epochs"] > old.get("epochs", new["epochs"]) and list(new["extended_from"]) == [
        *old.get("extended_from", []),
        old["epochs"],
    ]
