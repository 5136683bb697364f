"""Reproduce the paper's tables: the grid of runs, then the report (``snnjax-paper`` when installed).

``python experiments/paper.py --help`` lists the flags; the program is :mod:`snnjax.cli.paper`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("paper")
