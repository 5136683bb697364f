"""Download and prepare tensorflow-datasets datasets as ArrayRecord, for TF-free reading.

Run by hand, once, on a machine with network access and TensorFlow (``pip install -e
".[prepare]"``)::

    python -m snnjax.data.prepare cifar10 cifar100 --data_dir DIR

Training then reads ``DIR`` with ``--data_dir DIR`` (or ``TFDS_DATA_DIR=DIR``) and needs neither.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import tensorflow_datasets as tfds


def prepare(name: str, data_dir: str | None = None) -> str:
    """Download ``name`` (a tfds name, e.g. ``cifar10``, ``voc/2007``) and write ArrayRecord files.

    Returns the prepared dataset's directory. A dataset already prepared there is reused.
    """
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(file_format="array_record")
    return str(builder.data_path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("datasets", nargs="+", help="tfds names, e.g. cifar10 cifar100 voc/2007")
    parser.add_argument("--data_dir", default=None, help="target directory (default: tfds' own default)")
    args = parser.parse_args(argv)
    for name in args.datasets:
        print(f"{name}: prepared in {prepare(name, args.data_dir)}")


if __name__ == "__main__":
    main()
