"""Runs a list of :class:`~snnjax.paper.grid.Job` through the experiment scripts, in this process or in
``jobs`` worker processes, each job's output in ``<workdir>/logs/<job>.log``.

A job whose outputs exist is skipped without starting; any other job runs its script's command, which
resumes an interrupted run from its last checkpoint and refuses a run folder holding other settings, so
nothing finished is redone or overwritten. Compiled programs are shared between runs through JAX's
persistent compilation cache (``<workdir>/jax_cache``), and the seeds of one setting, run back to back in
one process, share them in memory (:mod:`snnjax.engine.programs`): each setting traces and compiles once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import importlib
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import jax

from snnjax.checks import check
from snnjax.engine import programs
from snnjax.engine.rundir import RunFolder
from snnjax.paper.grid import Job

SCALE_FILE = "paper.json"  # binds a workdir to one scale
_cache_dirs: set[str] = set()
# Exit statuses of a script that stop the whole grid: Ctrl-C (130) and SIGTERM (75, a checkpoint was saved).
STOP_STATUSES = (130, 75)
FAST_COMPILE = "--xla_llvm_disable_expensive_passes=true"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of a job: ``status`` done, skipped or failed; ``message`` (why it failed); seconds."""

    name: str
    status: str
    message: str = ""
    seconds: float = 0.0


def saved_scale(workdir: str) -> str | None:
    """The scale of the runs in ``workdir`` (None before the first run)."""
    saved = RunFolder(workdir).read_json(SCALE_FILE)
    return None if saved is None else saved["scale"]


def bind_scale(workdir: str, scale: str) -> None:
    """Records ``scale`` as ``workdir``'s, or raises InvalidValue when its runs have another: quick and full
    runs never mix."""
    saved = saved_scale(workdir)
    if saved is None:
        RunFolder(workdir).write_json(SCALE_FILE, {"scale": scale})
    else:
        check(saved == scale, "scale", scale, f"{saved!r}, the scale of the runs in {workdir}")


def compile_faster() -> None:
    """Skips LLVM's expensive optimisation passes in XLA's CPU compiler (``XLA_FLAGS``) in this process; a
    worker's initializer, run before its first computation. The quick grid's runs spend most of their time
    compiling; the first seeds of the quick grid ran 8 % faster with it, with bit-identical results."""
    flags = os.environ.get("XLA_FLAGS", "")
    if FAST_COMPILE not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILE}".strip()


def _script_main(script: str) -> Callable[[list[str]], dict]:
    """The program behind ``experiments/<name>.py``: ``snnjax.cli.<name>.main``."""
    name = os.path.splitext(os.path.basename(script))[0]
    return importlib.import_module(f"snnjax.cli.{name}").main


def _use_cache(cache_dir: str) -> None:
    if cache_dir not in _cache_dirs:
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        _cache_dirs.add(cache_dir)


def run_job(job: Job, log_dir: str, cache_dir: str) -> Outcome:
    """Runs ``job`` (its training command, then its evaluations) in this process, its output appended to
    ``log_dir/<name>.log``. Failures are returned, not raised."""
    started = time.perf_counter()
    _use_cache(cache_dir)
    os.makedirs(log_dir, exist_ok=True)
    main = _script_main(job.script)
    with open(os.path.join(log_dir, f"{job.name}.log"), "a") as log:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            print(f"$ {job.command()}", flush=True)
            try:
                for argv in (job.argv, *job.evals):
                    main(list(argv))
            except SystemExit as e:  # the scripts end a failure they name in one line this way
                if e.code in STOP_STATUSES:
                    raise
                if e.code not in (0, None):
                    message = e.code if isinstance(e.code, str) else f"exit status {e.code}"
                    return Outcome(job.name, "failed", message, time.perf_counter() - started)
            except Exception as e:  # a bug: its traceback goes to the log
                traceback.print_exc()
                return Outcome(job.name, "failed", f"{type(e).__name__}: {e}", time.perf_counter() - started)
    return Outcome(job.name, "done", "", time.perf_counter() - started)


def run_group(
    jobs: Sequence[Job], log_dir: str, cache_dir: str, ended: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Runs ``jobs`` one after another in this process (:func:`run_job`; ``ended`` hears of each outcome),
    then drops their compiled programs. Runs of one setting at other seeds share the programs the first
    one built (:mod:`snnjax.engine.programs`); a later group reads the persistent cache."""
    outcomes = []
    try:
        for job in jobs:
            outcomes.append(run_job(job, log_dir, cache_dir))
            if ended is not None:
                ended(outcomes[-1])
        return outcomes
    finally:
        programs.forget()
        jax.clear_caches()


def job_groups(jobs: Sequence[Job], together: bool) -> list[list[Job]]:
    """The jobs in groups that run in one process: each setting's seeds when ``together``, else one job each."""
    if not together:
        return [[job] for job in jobs]
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.setting.name, []).append(job)
    return list(groups.values())


def run_jobs(
    jobs: Sequence[Job],
    workdir: str,
    workers: int = 1,
    report: Callable[[Outcome, int, int], None] | None = None,
    together: bool = False,
    fast_compile: bool = False,
) -> list[Outcome]:
    """Runs the jobs not done yet (in order, or each setting's seeds back to back when ``together``;
    ``workers`` at a time in spawned processes when above 1, which :func:`compile_faster` when
    ``fast_compile``) and returns every job's :class:`Outcome` in the order of ``jobs``;
    ``report(outcome, index, total)`` hears of each as it ends."""
    log_dir, cache_dir = os.path.join(workdir, "logs"), os.path.join(workdir, "jax_cache")
    report = report or (lambda outcome, index, total: None)
    outcomes: dict[str, Outcome] = {}
    pending = []
    for job in jobs:
        if job.done():
            outcomes[job.name] = Outcome(job.name, "skipped")
            report(outcomes[job.name], len(outcomes), len(jobs))
        else:
            pending.append(job)

    def ended(outcome: Outcome) -> None:
        outcomes[outcome.name] = outcome
        report(outcome, len(outcomes), len(jobs))

    groups = job_groups(pending, together)
    if workers <= 1:
        for group in groups:
            run_group(group, log_dir, cache_dir, ended)
    else:
        context = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        initializer = compile_faster if fast_compile else None
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=initializer) as pool:
            futures = [pool.submit(run_group, group, log_dir, cache_dir) for group in groups]
            try:
                for future in concurrent.futures.as_completed(futures):
                    for outcome in future.result():
                        ended(outcome)
            except KeyboardInterrupt:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return [outcomes[job.name] for job in jobs]


def print_outcome(outcome: Outcome, index: int, total: int, workdir: str) -> None:
    """One progress line per job on stdout."""
    line = f"[{index}/{total}] {outcome.name}: {outcome.status}"
    if outcome.seconds:
        line += f" in {outcome.seconds:.0f} s"
    if outcome.message:
        line += f": {outcome.message} (log: {os.path.join(workdir, 'logs', outcome.name + '.log')})"
    print(line, file=sys.stdout, flush=True)
