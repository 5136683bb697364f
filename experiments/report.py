"""Write the reproduction report of an experiments/paper.py folder (``snnjax-report`` when installed).

``python experiments/report.py --help`` lists the flags; the program is :mod:`snnjax.cli.report`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("report")
