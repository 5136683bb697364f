"""Train or evaluate QKFormer on CIFAR-10/100 or synthetic data (``snnjax-cifar`` when installed).

``python experiments/cifar.py --help`` lists the flags; the program is :mod:`snnjax.cli.cifar`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("cifar")
