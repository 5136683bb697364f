"""Settings: construction checks every field, JSON round trips, differences, nested replacement."""

import dataclasses
import json

import pytest

from snnjax.checks import InvalidValue, integer
from snnjax.engine.config import LoopConfig
from snnjax.models.spiking import SpikingConfig
from snnjax.settings import (
    Settings,
    differences,
    from_dict,
    get_path,
    leaves,
    replace_paths,
    result_neutral,
    setting,
    to_dict,
)
from snnjax.tasks.classification import PAPER, ClassificationConfig
from snnjax.tasks.detection import SYNTHETIC, DetectionConfig


@dataclasses.dataclass(frozen=True)
class Pair(Settings):
    low: int = setting(1, "low end", accepts=integer(0))
    high: int = setting(2, "high end", accepts=integer(0))

    def validate(self):
        if self.high < self.low:
            raise InvalidValue("high", self.high, f"an int >= low = {self.low}")


def test_building_a_config_checks_each_field_then_the_fields_together():
    with pytest.raises(InvalidValue, match=r"^low: got -1; accepted: an int >= 0$"):
        Pair(low=-1)
    with pytest.raises(InvalidValue, match=r"^high: got 1; accepted: an int >= low = 3$"):
        Pair(low=3, high=1)
    with pytest.raises(InvalidValue, match="^high"):
        dataclasses.replace(Pair(), high=0)


@pytest.mark.parametrize("config", [PAPER, SYNTHETIC])
def test_every_task_config_round_trips_through_json(config):
    data = json.loads(json.dumps(to_dict(config)))
    assert from_dict(type(config), data) == config


def test_from_dict_restores_tuples_and_names_an_unknown_setting():
    config = from_dict(DetectionConfig, {"loss": {"balance": [1, 2, 3]}, "loop": {"extended_from": [4]}})
    assert config.loss.balance == (1, 2, 3) and config.loop.extended_from == (4,)
    with pytest.raises(ValueError, match=r"unknown setting model\.spiking\.gamma"):
        from_dict(ClassificationConfig, {"model": {"spiking": {"gamma": 1}}})


def test_replace_paths_changes_nested_settings_and_checks_them():
    config = replace_paths(PAPER, {"model.spiking.T": 2, "optim.lr": 0.5, "shuffle_time": False})
    assert (config.model.spiking.T, config.optim.lr, get_path(config, "model.spiking.T")) == (2, 0.5, 2)
    assert config.model.spiking == dataclasses.replace(PAPER.model.spiking, T=2)
    with pytest.raises(InvalidValue, match="^learnable_conv"):
        replace_paths(PAPER, {"model.spiking.encoding": "direct", "model.spiking.learnable_conv": False})


def test_differences_name_each_changed_setting_except_the_ignored():
    saved, current = to_dict(PAPER), to_dict(replace_paths(PAPER, {"optim.lr": 0.5, "loop.progress": False}))
    assert differences(saved, current) == ["loop.progress: True -> False", "optim.lr: 0.001 -> 0.5"]
    assert differences(saved, current, result_neutral(ClassificationConfig)) == ["optim.lr: 0.001 -> 0.5"]
    del saved["shuffle_time"]
    assert differences(saved, to_dict(PAPER)) == ["shuffle_time: '<absent>' -> False"]


def test_settings_that_do_not_change_results_are_marked_so():
    neutral = result_neutral(ClassificationConfig)
    assert {"loop.workdir", "loop.progress", "loop.num_devices", "data.data_dir", "shuffle_time"} <= neutral
    assert not {"loop.seed", "loop.epochs", "optim.lr", "model.spiking.T"} & neutral


def test_every_setting_has_help():
    for cls in (ClassificationConfig, DetectionConfig, LoopConfig, SpikingConfig):
        for path, field, _ in leaves(cls):
            assert field.metadata.get("help"), path
