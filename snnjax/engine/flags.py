"""An experiment's command line, derived from its config dataclasses.

Every setting (``snnjax.settings.setting``) becomes one flat flag named after its field (or its
``flag``): type, help, default and accepted values come from the field, so a setting is written once.
Booleans take ``--x/--no-x``, optional values take ``none``, tuples take several values.

An :class:`Experiment` names its default config (the paper's), presets picked by one flag's value
(``--dataset=synthetic``), how to build its task and name its workdir. Every experiment also takes
``--resume WORKDIR`` (continue the run in WORKDIR from its ``config.json`` alone) and ``--extend``
(train a run further, to a larger ``--epochs``, recorded in its config). A bad value ends in one
line, ``<prog>: error: argument --<flag>: got ...; accepted: ...``, with exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from snnjax.checks import InvalidValue, check
from snnjax.engine.checkpoint import CheckpointError
from snnjax.engine.loop import NonFiniteError, run
from snnjax.engine.preemption import EXIT_STATUS as PREEMPTED_STATUS
from snnjax.engine.preemption import Preempted
from snnjax.engine.rundir import CONFIG, ConfigMismatchError, RunFolder, RunFolderError
from snnjax.settings import from_dict, get_path, leaves, replace_paths

# Failures a user can fix, reported in one line; anything else keeps its traceback (a bug).
EXPECTED = (InvalidValue, ConfigMismatchError, RunFolderError, CheckpointError, NonFiniteError, OSError)


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An entry point: ``default`` config, ``presets`` (config by the value of ``--<preset_flag>``),
    ``setup(config) -> task``, ``workdir(config) -> default workdir``, the ``result_keys`` it prints."""

    prog: str
    description: str
    default: Any
    setup: Callable[[Any], Any]
    workdir: Callable[[Any], str]
    result_keys: Sequence[str]
    presets: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    preset_flag: str = "dataset"


@dataclasses.dataclass(frozen=True)
class Flag:
    """The flag of the setting at ``path``."""

    name: str
    path: str
    field: dataclasses.Field
    type: Any


def flags(config_cls: type) -> dict[str, Flag]:
    """Flag name -> :class:`Flag` for every setting of ``config_cls`` that has a flag. Raises ValueError
    when two settings share a flag or a field name (errors name fields, so both must be unique)."""
    table: dict[str, Flag] = {}
    fields: set[str] = set()
    for path, field, tp in leaves(config_cls):
        name = field.metadata.get("flag")
        if name is False:
            continue
        name = name or field.name
        if name in table or field.name in fields:
            raise ValueError(f"{config_cls.__name__}: flag --{name} or field {field.name!r} appears twice")
        table[name] = Flag(name, path, field, tp)
        fields.add(field.name)
    return table


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return " ".join(map(str, value))
    return str(value)


def _or_none(convert: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else convert(text)

    parse.__name__ = f"{convert.__name__} or none"
    return parse


def argparse_options(flag: Flag, default: Any) -> dict:
    """``add_argument`` keywords of ``flag``: type, nargs or action, choices, help with ``default``."""
    accepts = flag.field.metadata.get("accepts")
    shown = _show(default)
    if default is None and accepts is not None and accepts.none_means:
        shown = f"none = {accepts.none_means}"
    options: dict[str, Any] = {"help": f"{flag.field.metadata['help']} (default: {shown})".replace("%", "%%")}
    tp = flag.type
    union = typing.get_origin(tp) in (typing.Union, types.UnionType)
    members = [a for a in typing.get_args(tp) if a is not type(None)] if union else [tp]
    base = members[0] if len(members) == 1 else str
    if base is bool:
        return {**options, "action": argparse.BooleanOptionalAction}
    if typing.get_origin(base) is tuple:
        items = typing.get_args(base)
        return {**options, "type": items[0], "nargs": "+" if Ellipsis in items else len(items), "metavar": "X"}
    convert = base if base in (int, float, str) else str
    options["type"] = _or_none(convert) if union and len(members) == 1 else convert
    if flag.field.metadata.get("choices") is not None:
        options["choices"] = flag.field.metadata["choices"]
    return options


def preset_changes(experiment: Experiment, preset: Any) -> dict[str, Any]:
    """Flag name -> value for the settings where ``preset`` differs from the default config."""
    table = flags(type(experiment.default))
    return {
        name: get_path(preset, f.path)
        for name, f in table.items()
        if get_path(preset, f.path) != get_path(experiment.default, f.path) and name != experiment.preset_flag
    }


class OneLineErrors(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (no usage block, which runs to dozens of lines)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the flags)\n")


def build_parser(experiment: Experiment) -> argparse.ArgumentParser:
    """The parser: one group of flags per config section; only flags given appear in its result."""
    epilog = "".join(
        f"With --{experiment.preset_flag}={key}, flags not given take: "
        + " ".join(f"--{k}={_show(v)}" for k, v in preset_changes(experiment, preset).items())
        + ".\n"
        for key, preset in experiment.presets.items()
    )
    parser = OneLineErrors(
        prog=experiment.prog,
        description=experiment.description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    run_group = parser.add_argument_group("run")
    run_group.add_argument(
        "--resume",
        metavar="WORKDIR",
        help="continue the run in WORKDIR from its config.json (other flags may "
        "change only what does not alter results, or --epochs with --extend)",
    )
    run_group.add_argument(
        "--extend",
        action="store_true",
        help="train a finished (or running) run further, to a larger --epochs; "
        "the earlier results are kept as results_<N>epochs.json",
    )
    groups: dict[str, Any] = {"loop": run_group}
    for name, flag in flags(type(experiment.default)).items():
        section = flag.path.split(".")[0] if "." in flag.path else "experiment"
        if section not in groups:
            groups[section] = parser.add_argument_group(section)
        groups[section].add_argument(f"--{name}", **argparse_options(flag, get_path(experiment.default, flag.path)))
    return parser


def resumed_config(experiment: Experiment, workdir: str) -> Any:
    """The config saved in ``workdir``'s ``config.json``, with ``workdir`` as its workdir."""
    saved = RunFolder(workdir).read_json(CONFIG)
    check(saved is not None, "resume", workdir, f"a workdir holding a run's {CONFIG}")
    try:
        config = from_dict(type(experiment.default), saved)
    except ValueError as e:  # an unknown setting; a bad value (InvalidValue) already names its flag
        if isinstance(e, InvalidValue):
            raise
        raise InvalidValue("resume", workdir, f"a run of {experiment.prog} ({e})") from None
    return replace_paths(config, {"loop.workdir": workdir})


def extended_config(config: Any) -> Any:
    """``config`` recorded as an extension of the run in its workdir (``--extend``)."""
    saved = RunFolder(config.loop.workdir).read_json(CONFIG)
    check(saved is not None, "extend", config.loop.workdir, "a workdir holding a run to extend")
    epochs, earlier = saved["loop"]["epochs"], tuple(saved["loop"].get("extended_from", ()))
    check(config.loop.epochs >= epochs, "epochs", config.loop.epochs, f"with --extend, at least the run's {epochs}")
    history = earlier if config.loop.epochs == epochs else (*earlier, epochs)
    return replace_paths(config, {"loop.extended_from": history})


def parse(experiment: Experiment, argv: Sequence[str] | None = None) -> tuple[Any, dict[str, Any]]:
    """The config the flags describe and the preset values that filled flags not given. A bad value
    exits through ``parser.error`` (one line naming the flag, status 2)."""
    parser = build_parser(experiment)
    table = flags(type(experiment.default))
    args = vars(parser.parse_args(argv))
    resume, extend = args.pop("resume", None), args.pop("extend", False)
    given = {table[name].path: tuple(v) if isinstance(v, list) else v for name, v in args.items()}
    flag_of = {f.field.name: name for name, f in table.items()}
    applied: dict[str, Any] = {}
    try:
        base = experiment.default
        if resume is not None:
            base = resumed_config(experiment, resume)
        elif experiment.presets:
            key_path = table[experiment.preset_flag].path
            base = experiment.presets.get(given.get(key_path, get_path(base, key_path)), base)
            applied = {k: v for k, v in preset_changes(experiment, base).items() if table[k].path not in given}
        config = replace_paths(base, given)
        if config.loop.workdir is None:
            config = replace_paths(config, {"loop.workdir": experiment.workdir(config)})
        if extend:
            config = extended_config(config)
    except InvalidValue as e:
        parser.error(f"argument --{flag_of.get(e.name, e.name)}: got {e.value!r}; accepted: {e.accepted}")
    except ValueError as e:
        parser.error(str(e))
    return config, applied


def main(experiment: Experiment, argv: Sequence[str] | None = None) -> dict:
    """Parses the flags, prints the preset and workdir, runs the experiment and prints its results.
    Expected failures (:data:`EXPECTED`: another run in the workdir, missing data, a failed or damaged
    checkpoint, non-finite numbers, a bad value found while building the task, an unwritable folder) end
    in one line and exit status 1; Ctrl-C says where the run stopped and how to resume it (status 130);
    SIGTERM saves a checkpoint where every process stops and says how to resume (status 75)."""
    config, applied = parse(experiment, argv)
    if applied:
        key = _show(get_path(config, flags(type(config))[experiment.preset_flag].path))
        print(f"{key} preset: " + " ".join(f"--{k}={_show(v)}" for k, v in applied.items()), flush=True)
    print(f"workdir: {config.loop.workdir}", flush=True)
    try:
        results = run(experiment.setup(config))
    except EXPECTED as e:
        sys.exit(f"{experiment.prog}: error: {e}")
    except Preempted as e:
        print(f"{experiment.prog}: {e}", file=sys.stderr)
        sys.exit(PREEMPTED_STATUS)
    except KeyboardInterrupt as e:
        print(f"{experiment.prog}: {e or 'interrupted'}", file=sys.stderr)
        sys.exit(130)
    shown = [f"{k}={results[k]:.4g}" for k in experiment.result_keys if isinstance(results.get(k), int | float)]
    print("results: " + " ".join(shown))
    return results
