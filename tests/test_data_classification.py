"""load_classification dispatch: names, errors, and no tensorflow_datasets on import."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from snnjax.tasks.classification.data import DATASETS, load_classification


@pytest.mark.parametrize("name", ["imagenet", "npz:", "CIFAR10", ""])
def test_unknown_dataset_names_the_argument_and_choices(name):
    with pytest.raises(
        ValueError,
        match=rf"^dataset: got {re.escape(repr(name))}; accepted: 'cifar10', 'cifar100', 'synthetic', 'npz:PATH'$",
    ):
        load_classification(name)
    assert DATASETS == ("cifar10", "cifar100", "synthetic", "npz:PATH")


def test_synthetic_options_are_rejected_for_other_datasets():
    with pytest.raises(
        ValueError,
        match=r"^options: got \['num_train'\]; accepted: none for dataset 'cifar10' "
        r"\(only 'synthetic' takes options\)$",
    ):
        load_classification("cifar10", num_train=10)


def test_synthetic_options_pass_through():
    data = load_classification("synthetic", num_train=20, num_test=10, image_size=8, num_classes=4)
    assert data.x_train.shape == (20, 8, 8, 3) and data.num_classes == 4


def test_import_does_not_load_tensorflow_datasets():
    code = "import sys, snnjax.data; assert not {'tensorflow', 'tensorflow_datasets'} & set(sys.modules), 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
