"""Train or evaluate the spiking YOLOv5n on PASCAL VOC or synthetic data (``snnjax-voc`` when installed).

``python experiments/voc.py --help`` lists the flags; the program is :mod:`snnjax.cli.voc`.
"""

from snnjax.cli import run

if __name__ == "__main__":
    run("voc")
