"""Settings: frozen config dataclasses whose fields say what they accept, what their flag is called and
whether they change a run's results.

Each setting is written once, as a :func:`setting` field of a :class:`Settings` dataclass. Building one
checks every field (``snnjax.checks``), then the class's :meth:`Settings.validate` (checks across
fields), so a config that exists is valid. The command line (``snnjax.engine.flags``), the saved
``config.json`` (:func:`to_dict`, :func:`from_dict`) and the resume check (:func:`differences`,
:func:`result_neutral`) all read the same fields.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from snnjax.checks import Accepts, one_of


def setting(
    default: Any,
    help: str,
    *,
    accepts: Accepts | None = None,
    choices: tuple | None = None,
    flag: str | bool | None = None,
    affects_results: bool = True,
) -> Any:
    """A config field: its default and one line of help; the values it ``accepts`` (by default its ``choices``);
    its flag name (None: the field's name; False: no flag); whether changing it changes the results."""
    if choices is not None and accepts is None:
        accepts = one_of(choices)
    metadata = {"help": help, "accepts": accepts, "choices": choices, "flag": flag, "affects_results": affects_results}
    return dataclasses.field(default=default, metadata=metadata)


class Settings:
    """Base of the config dataclasses: construction checks each field's accepted values, then
    :meth:`validate`. Subclasses are ``@dataclasses.dataclass(frozen=True)``."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            accepts = field.metadata.get("accepts")
            if accepts is not None:
                accepts(field.name, getattr(self, field.name))
        self.validate()

    def validate(self) -> None:
        """Checks across fields; raises :class:`snnjax.checks.InvalidValue` naming one of them."""


def to_dict(config: Any) -> dict:
    """A config as the nested dict ``config.json`` holds (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _is_settings(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _restore(tp: Any, value: Any, path: str) -> Any:
    """``value`` read from JSON as the annotated type ``tp`` wants it (nested configs, tuples)."""
    if _is_settings(tp) and isinstance(value, Mapping):
        return from_dict(tp, value, path + ".")
    if typing.get_origin(tp) is tuple and isinstance(value, list):
        return tuple(value)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            if (_is_settings(option) and isinstance(value, Mapping)) or typing.get_origin(option) is tuple:
                return _restore(option, value, path)
    return value


def from_dict(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """The ``cls`` config a (nested) dict describes; missing fields take their defaults. Raises
    ValueError naming a field the class does not have, and :class:`snnjax.checks.InvalidValue` for a bad value."""
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown setting {prefix}{unknown[0]} (accepted: {', '.join(sorted(names))})")
    return cls(**{name: _restore(hints[name], value, prefix + name) for name, value in data.items()})


def leaves(cls: type, prefix: str = "") -> Iterator[tuple[str, dataclasses.Field, Any]]:
    """``(dotted path, field, resolved type)`` of every setting of ``cls``, nested configs expanded."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if _is_settings(hints[field.name]):
            yield from leaves(hints[field.name], f"{prefix}{field.name}.")
        else:
            yield f"{prefix}{field.name}", field, hints[field.name]


def result_neutral(cls: type) -> frozenset[str]:
    """Dotted paths of the settings that never change a run's results (they may differ on resume)."""
    return frozenset(path for path, field, _ in leaves(cls) if not field.metadata.get("affects_results", True))


def get_path(config: Any, path: str) -> Any:
    """The value at a dotted ``path`` of a config."""
    for name in path.split("."):
        config = getattr(config, name)
    return config


def replace_paths(config: Any, values: Mapping[str, Any]) -> Any:
    """``config`` with the dotted paths of ``values`` replaced; each changed (nested) config is built, so
    checked, once."""
    sections: dict[str, dict[str, Any]] = {}
    direct = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            sections.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for name, nested in sections.items():
        direct[name] = replace_paths(getattr(config, name), nested)
    return dataclasses.replace(config, **direct) if direct else config


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def differences(saved: Mapping, current: Mapping, ignored: frozenset[str] = frozenset()) -> list[str]:
    """``path: saved -> current`` for every dotted path (not in ``ignored``) whose values differ."""
    old, new = flatten(saved), flatten(current)
    absent = "<absent>"
    names = sorted((set(old) | set(new)) - ignored)
    return [
        f"{n}: {old.get(n, absent)!r} -> {new.get(n, absent)!r}"
        for n in names
        if old.get(n, absent) != new.get(n, absent)
    ]
