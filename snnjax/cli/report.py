"""Write the reproduction report of a paper.py folder: WORKDIR/report.md and WORKDIR/figures/*.png.

    python experiments/report.py runs/paper_quick
    python experiments/report.py runs/paper_full --table 2

Same as ``python experiments/paper.py --workdir WORKDIR --scale <its scale> --report``.
"""

from __future__ import annotations

import argparse

from snnjax.cli.hugepages import restart_with_hugepages
from snnjax.engine.flags import OneLineErrors
from snnjax.paper import grid
from snnjax.paper.report import write_report
from snnjax.paper.runner import saved_scale


def main(argv: list[str] | None = None) -> str:
    p = OneLineErrors(prog="report.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workdir", help="a folder made by experiments/paper.py")
    p.add_argument("--table", default="all", choices=grid.TABLE_NAMES, help="the tables to report (default all)")
    args = p.parse_args(argv)
    scale = saved_scale(args.workdir)
    if scale is None:
        p.error(f"argument workdir: got {args.workdir!r}; accepted: a folder made by experiments/paper.py")
    path = write_report(args.workdir, grid.tables(args.table), scale)
    print(f"report: {path}")
    return path


if __name__ == "__main__":
    restart_with_hugepages()
    main()
