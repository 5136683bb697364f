"""Reproduce the paper's tables: the grid of runs, then the report (``snnjax-paper`` when installed).

``python experiments/paper.py --help`` lists the flags; the program is :mod:`snnjax.cli.paper`.
"""

from snnjax.cli.paper import main

if __name__ == "__main__":
    main()
