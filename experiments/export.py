"""Export a trained run's weights as the reference PyTorch state_dict (``snnjax-export`` when installed).

``python experiments/export.py --help`` lists the flags; the program is :mod:`snnjax.cli.export`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("export")
