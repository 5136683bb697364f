"""Predict with a trained run on your own images (``snnjax-predict`` when installed).

``python experiments/predict.py --help`` lists the flags; the program is :mod:`snnjax.cli.predict`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("predict")
