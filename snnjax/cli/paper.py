"""Reproduce the paper's tables: run the grid of experiments behind them, then write the report.

Every run goes through experiments/cifar.py or voc.py in its own folder, WORKDIR/runs/<setting>_s<seed>
(seeds 35, 1000 and 0). Re-running the command skips finished runs, resumes interrupted ones and never
overwrites a result; the report (WORKDIR/report.md and its figures) is written from the run folders.

Scales: quick (synthetic data, a small QKFormer, minutes on a CPU: it proves the plumbing and the report,
its numbers are not the paper's) and full (the paper's datasets and recipe; far beyond one machine: run
the grid with --list or --shard on a cluster, then --report).

Examples:
    python experiments/paper.py --table all --scale quick
    python experiments/paper.py --table 2 --scale full --list            # the commands, one run per line
    python experiments/paper.py --table all --scale full --shard $SLURM_ARRAY_TASK_ID/40 \\
        --cifar_flags "--data_dir ~/tensorflow_datasets" --voc_flags "--data_dir ~/tensorflow_datasets"
    python experiments/paper.py --table all --scale full --report        # report what has finished
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import sys

from snnjax.checks import InvalidValue
from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.flags import OneLineErrors
from snnjax.paper import grid, runner


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``, checked as :func:`snnjax.paper.grid.shard` checks it."""
    try:
        index, count = (int(part) for part in text.split("/"))
        grid.shard([], index, count)
    except (ValueError, InvalidValue):
        raise argparse.ArgumentTypeError(f"got {text!r}; accepted: i/n with n >= 1 and 0 <= i < n") from None
    return index, count


def build_parser() -> argparse.ArgumentParser:
    p = OneLineErrors(prog="paper.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", default="all", choices=grid.TABLE_NAMES, help="the table to reproduce (default all)")
    p.add_argument("--scale", default="quick", choices=grid.SCALES, help="quick or full (default quick)")
    p.add_argument("--workdir", help="folder of the runs and the report (default runs/paper_<scale>)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(grid.SEEDS), help="seeds (default 35 1000 0)")
    p.add_argument(
        "--match",
        nargs="+",
        help="only the runs whose name matches one of these shell patterns, e.g. 'voc_*' 'cifar100_*'",
    )
    p.add_argument("--shard", type=parse_shard, help="i/n: run only the i-th (from 0) of n interleaved slices")
    p.add_argument(
        "--jobs",
        type=int,
        help="runs at a time on this machine (default: 2 at the quick scale, whose runs are small and spend "
        "most of their time compiling on one core; 1 at the full scale, one run per accelerator)",
    )
    p.add_argument("--list", action="store_true", help="print the runs as shell commands, one per line, and stop")
    p.add_argument("--report", action="store_true", help="only write the report from the runs found")
    p.add_argument("--cifar_flags", default="", help="more flags for every cifar.py run, e.g. '--data_dir D'")
    p.add_argument("--voc_flags", default="", help="more flags for every voc.py run")
    return p


def selected_jobs(args: argparse.Namespace, workdir: str) -> list[grid.Job]:
    extra = {"cifar": shlex.split(args.cifar_flags), "voc": shlex.split(args.voc_flags)}
    jobs = grid.jobs(grid.tables(args.table), args.scale, workdir, args.seeds, extra)
    if args.match:
        jobs = [job for job in jobs if any(fnmatch.fnmatch(job.name, pattern) for pattern in args.match)]
    if args.shard:
        jobs = grid.shard(jobs, *args.shard)
    return jobs


def main(argv: list[str] | None = None) -> list[runner.Outcome]:
    """Lists, runs or reports the grid; returns the runs' outcomes (none with --list or --report)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = 2 if args.scale == "quick" else 1
    if args.jobs < 1:
        parser.error(f"argument --jobs: got {args.jobs}; accepted: integers >= 1")
    workdir = args.workdir or os.path.join("runs", f"paper_{args.scale}")
    jobs = selected_jobs(args, workdir)
    if args.list:
        print("\n".join(job.command() for job in jobs))
        return []
    from snnjax.paper.report import write_report

    try:
        runner.bind_scale(workdir, args.scale)
    except InvalidValue as e:
        parser.error(f"argument --scale: got {e.value!r}; accepted: {e.accepted}")
    outcomes = []
    if not args.report:
        print(f"{len(jobs)} runs in {workdir} ({args.scale} scale)", flush=True)
        try:
            outcomes = runner.run_jobs(
                jobs,
                workdir,
                args.jobs,
                lambda outcome, i, n: runner.print_outcome(outcome, i, n, workdir),
                together=args.scale == "quick",  # full: every cell at one seed first
                fast_compile=args.scale == "quick",
            )
        except KeyboardInterrupt:
            print(f"paper.py: interrupted; the same command resumes ({workdir})", file=sys.stderr)
            sys.exit(130)
        except SystemExit as e:  # a run stopped on SIGTERM (75) or Ctrl-C (130): stop the grid too
            print(f"paper.py: stopped (status {e.code}); the same command resumes ({workdir})", file=sys.stderr)
            raise
    if args.report or args.shard is None:
        path = write_report(workdir, grid.tables(args.table), args.scale)
        print(f"report: {path}")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        sys.exit(f"paper.py: {len(failed)} of {len(outcomes)} runs failed: " + ", ".join(o.name for o in failed))
    return outcomes


if __name__ == "__main__":
    restart_with_hugepages()
    main()
