"""An experiment's command line derived from its config dataclasses (snnjax.engine.flags)."""

import dataclasses
import json

import pytest

from snnjax.checks import BOOL, check, integer, number, optional
from snnjax.engine import flags
from snnjax.engine.config import LoopConfig
from snnjax.settings import Settings, replace_paths, setting, to_dict


@dataclasses.dataclass(frozen=True)
class Inner(Settings):
    rate: float = setting(0.5, "a rate", accepts=number(0, 1))
    size: int | None = setting(None, "a size", accepts=optional(integer(1), "automatic"))
    gains: tuple[float, float] = setting((1.0, 2.0), "two gains")
    switch: bool = setting(True, "a switch", flag="sw", accepts=BOOL)
    kind: str = setting("a", "a kind", choices=("a", "b"))


@dataclasses.dataclass(frozen=True)
class Toy(Settings):
    loop: LoopConfig = LoopConfig(epochs=10)
    inner: Inner = Inner()
    dataset: str = setting("real", "the data", choices=("real", "synthetic"))

    def validate(self):
        check(self.inner.kind == "a" or self.loop.epochs > 1, "kind", self.inner.kind, "'a' when epochs is 1")


TOY = flags.Experiment(
    prog="toy.py",
    description="A toy experiment.",
    default=Toy(),
    presets={"synthetic": replace_paths(Toy(), {"dataset": "synthetic", "loop.epochs": 2, "inner.rate": 0.25})},
    setup=lambda config: config,
    workdir=lambda config: f"runs/toy_{config.dataset}_{config.loop.epochs}",
    result_keys=("accuracy",),
)


def test_every_setting_is_one_flag_named_after_its_field_or_its_flag():
    table = flags.flags(Toy)
    assert table["sw"].path == "inner.switch" and table["rate"].path == "inner.rate"
    assert "extended_from" not in table and {"epochs", "seed", "workdir", "dataset", "kind"} <= table.keys()


def test_flags_take_types_none_tuples_toggles_and_choices():
    config, applied = flags.parse(TOY, ["--rate", "0.75", "--size", "3", "--gains", "3", "4", "--no-sw", "--kind=b"])
    assert config.inner == Inner(rate=0.75, size=3, gains=(3.0, 4.0), switch=False, kind="b") and applied == {}
    assert flags.parse(TOY, ["--size", "none"])[0].inner.size is None
    assert config.loop.workdir == "runs/toy_real_10"


def test_a_preset_fills_only_the_flags_not_given_and_the_help_lists_it(capsys):
    config, applied = flags.parse(TOY, ["--dataset=synthetic", "--rate=0.1"])
    assert (config.loop.epochs, config.inner.rate, applied) == (2, 0.1, {"epochs": 2})
    with pytest.raises(SystemExit):
        flags.parse(TOY, ["--help"])
    text = capsys.readouterr().out
    assert "With --dataset=synthetic, flags not given take: --epochs=2 --rate=0.25." in text
    assert "a size (default: none = automatic)" in text and "two gains (default: 1.0 2.0)" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rate=2"], "argument --rate: got 2.0; accepted: a finite number in [0, 1]"),
        (["--rate=nan"], "argument --rate: got nan; accepted: a finite number in [0, 1]"),
        (["--size=0"], "argument --size: got 0; accepted: none (automatic) or an int >= 1"),
        (["--kind=c"], "argument --kind: invalid choice: 'c'"),
        (["--kind=b", "--epochs=1"], "argument --kind: got 'b'; accepted: 'a' when epochs is 1"),
        (["--sw=1"], "argument --sw/--no-sw: ignored explicit argument '1'"),
        (["--resume=/no/such/run"], "argument --resume: got '/no/such/run'; accepted: a workdir holding a run's"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        flags.parse(TOY, argv)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(f"toy.py: error: {message}"), lines


def test_resume_reads_the_config_of_the_run_folder(tmp_path):
    saved = replace_paths(Toy(), {"inner.rate": 0.125, "loop.epochs": 4, "loop.workdir": "elsewhere"})
    (tmp_path / "config.json").write_text(json.dumps(to_dict(saved)))
    config, applied = flags.parse(TOY, ["--resume", str(tmp_path), "--no-progress"])
    assert config == replace_paths(saved, {"loop.workdir": str(tmp_path), "loop.progress": False})
    assert applied == {}


def test_extend_records_the_earlier_epochs_and_refuses_fewer(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(to_dict(replace_paths(Toy(), {"loop.extended_from": (2,)}))))
    config, _ = flags.parse(TOY, ["--resume", str(tmp_path), "--extend", "--epochs", "12"])
    assert (config.loop.epochs, config.loop.extended_from) == (12, (2, 10))
    same, _ = flags.parse(TOY, ["--resume", str(tmp_path), "--extend"])
    assert (same.loop.epochs, same.loop.extended_from) == (10, (2,))
    with pytest.raises(SystemExit):
        flags.parse(TOY, ["--resume", str(tmp_path), "--extend", "--epochs", "5"])
    assert "argument --epochs: got 5; accepted: with --extend, at least the run's 10" in capsys.readouterr().err


def test_a_setting_twice_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Twice(Settings):
        loop: LoopConfig = LoopConfig()
        other: Inner = Inner()
        rate: float = setting(0.1, "clashes with inner.rate")

    with pytest.raises(ValueError, match="--rate or field 'rate' appears twice"):
        flags.flags(Twice)


def test_main_prints_the_preset_workdir_and_results(capsys, monkeypatch):
    monkeypatch.setattr(flags, "run", lambda config: {"accuracy": 0.5, "epochs": config.loop.epochs})
    assert flags.main(TOY, ["--dataset=synthetic"]) == {"accuracy": 0.5, "epochs": 2}
    out = capsys.readouterr().out
    assert "synthetic preset: --epochs=2 --rate=0.25" in out and "workdir: runs/toy_synthetic_2" in out
    assert "results: accuracy=0.5" in out
