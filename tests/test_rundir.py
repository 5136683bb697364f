"""The run folder: atomic writes, readable errors, the config check, extensions, the metrics history."""

import json
import os

import pytest

from snnjax.engine.rundir import CONFIG, METRICS, RESULTS, ConfigMismatchError, RunFolder, extends

SAVED = {"loop": {"epochs": 4, "extended_from": [], "progress": True}, "optim": {"lr": 0.1}}


def test_writes_replace_files_whole_and_leave_no_temporary(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.write_json(RESULTS, {"accuracy": 0.5})
    folder.write_json(RESULTS, {"accuracy": 0.75})
    assert folder.read_json(RESULTS) == {"accuracy": 0.75}
    assert sorted(os.listdir(tmp_path / "run")) == [RESULTS]


def test_an_unreadable_file_is_named(tmp_path):
    (tmp_path / CONFIG).write_text('{"loop": ')
    with pytest.raises(ValueError, match=rf"{tmp_path / CONFIG}: not readable as JSON"):
        RunFolder(str(tmp_path)).read_json(CONFIG)


def test_the_config_is_saved_once_and_a_different_one_is_refused(tmp_path):
    folder = RunFolder(str(tmp_path))
    assert folder.check_config(SAVED, frozenset()) is None and folder.read_json(CONFIG) == SAVED
    assert folder.check_config({**SAVED, "loop": {**SAVED["loop"], "progress": False}}, {"loop.progress"}) == SAVED
    with pytest.raises(ConfigMismatchError, match=r"differing settings: optim\.lr: 0\.1 -> 0\.2\. "):
        folder.check_config({**SAVED, "optim": {"lr": 0.2}}, frozenset())
    with pytest.raises(ConfigMismatchError, match=r"loop\.epochs: 4 -> 8.*--extend"):
        folder.check_config({**SAVED, "loop": {**SAVED["loop"], "epochs": 8}}, {"loop.extended_from"})


def test_an_extension_keeps_the_earlier_results_and_saves_the_new_config(tmp_path):
    folder = RunFolder(str(tmp_path))
    folder.write_json(CONFIG, SAVED)
    folder.write_json(RESULTS, {"accuracy": 0.5})
    extended = {**SAVED, "loop": {**SAVED["loop"], "epochs": 8, "extended_from": [4]}}
    assert extends(SAVED, extended) and not extends(extended, SAVED)
    folder.check_config(extended, {"loop.extended_from"})
    assert folder.read_json("results_4epochs.json") == {"accuracy": 0.5}
    assert folder.read_json(RESULTS) is None and folder.read_json(CONFIG) == extended


def test_the_history_drops_epochs_past_the_last_checkpoint(tmp_path):
    folder = RunFolder(str(tmp_path))
    folder.write_history([{"epoch": 1}, {"epoch": 2}, {"epoch": 3}])
    assert folder.history(2) == [{"epoch": 1}, {"epoch": 2}]
    assert [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()] == [{"epoch": 1}, {"epoch": 2}]
    (tmp_path / METRICS).write_text('{"epoch": 1}\n{"epo')
    with pytest.raises(ValueError, match=r"metrics\.jsonl, line 2: not JSON"):
        folder.history(2)
