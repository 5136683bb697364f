"""Value checks shared by the whole library, with one error format.

Every check raises :class:`InvalidValue`, a ``ValueError`` whose message reads
``<name>: got <value>; accepted: <what is accepted>``; the command line turns the same error into
``argument --<flag>: got ...; accepted: ...``. :class:`Accepts` describes the values of a setting
(``snnjax.settings``) once, for the check and for the help text.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

import jax.numpy as jnp


class InvalidValue(ValueError):
    """``name`` got ``value``; ``accepted`` says what it takes."""

    def __init__(self, name: str, value: Any, accepted: str):
        self.name, self.value, self.accepted = name, value, accepted
        super().__init__(f"{name}: got {value!r}; accepted: {accepted}")


def check(ok: bool, name: str, value: Any, accepted: str) -> None:
    """Raises :class:`InvalidValue` unless ``ok``."""
    if not ok:
        raise InvalidValue(name, value, accepted)


def is_int(value: Any) -> bool:
    """True for Python (or NumPy) integers that are not bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """True for finite real numbers that are not bools (NaN and ±inf are not numbers here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_dtype(dtype: Any) -> None:
    """Raises :class:`InvalidValue` unless ``dtype`` is None or a floating dtype (a model's compute dtype)."""
    check(
        dtype is None or jnp.issubdtype(dtype, jnp.floating),
        "dtype",
        dtype,
        "None or a floating dtype, e.g. jnp.bfloat16",
    )


@dataclasses.dataclass(frozen=True)
class Accepts:
    """The values a setting accepts: a predicate and its description (``"an int >= 1"``); ``none_means``
    says what None stands for where None is accepted."""

    test: Callable[[Any], bool]
    description: str
    none_means: str | None = None

    def __call__(self, name: str, value: Any) -> None:
        """Raises :class:`InvalidValue` naming ``name`` unless ``value`` is accepted."""
        check(self.test(value), name, value, self.description)


def _bounds(low: float | None, high: float | None, low_open: bool, high_open: bool) -> tuple[Callable, str]:
    def inside(v) -> bool:
        above = low is None or (v > low if low_open else v >= low)
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    if low is not None and high is not None:
        text = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        text = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        text = f"{'<' if high_open else '<='} {high:g}"
    else:
        text = ""
    return inside, text


def integer(low: int | None = None, high: int | None = None) -> Accepts:
    """Integers in ``[low, high]`` (either bound may be None)."""
    inside, text = _bounds(low, high, False, False)
    return Accepts(lambda v: is_int(v) and inside(v), f"an int {text}".rstrip())


def number(low: float | None = None, high: float | None = None, *, low_open=False, high_open=False) -> Accepts:
    """Finite reals between ``low`` and ``high`` (open ends with ``low_open``/``high_open``)."""
    inside, text = _bounds(low, high, low_open, high_open)
    return Accepts(lambda v: is_number(v) and inside(v), f"a finite number {text}".rstrip())


def optional(accepts: Accepts, none_means: str) -> Accepts:
    """None (standing for ``none_means``), or what ``accepts`` accepts."""
    return Accepts(lambda v: v is None or accepts.test(v), f"none ({none_means}) or {accepts.description}", none_means)


def one_of(values: Collection[Any]) -> Accepts:
    """One of ``values``."""
    return Accepts(lambda v: v in values, ", ".join(map(repr, values)))


def tuple_of(count: int, each: Accepts) -> Accepts:
    """A tuple of ``count`` values, each accepted by ``each``."""
    return Accepts(
        lambda v: isinstance(v, tuple) and len(v) == count and all(each.test(x) for x in v),
        f"{count} values, each {each.description}",
    )


BOOL = Accepts(lambda v: isinstance(v, bool), "True or False")
TEXT = Accepts(lambda v: isinstance(v, str) and v != "", "a non-empty string")
EXISTING_PATH = Accepts(lambda v: isinstance(v, str) and os.path.exists(v), "an existing file or folder")


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace, accepted: Mapping[str, Accepts]) -> None:
    """For scripts with hand-written flags: ``parser.error`` in the one format unless every ``args.<name>``
    is what ``accepted[name]`` accepts."""
    for name, accepts in accepted.items():
        value = getattr(args, name)
        if not accepts.test(value):
            parser.error(f"argument --{name}: got {value!r}; accepted: {accepts.description}")
