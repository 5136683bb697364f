"""Constructor checks shared by the models: errors name the attribute and the accepted values."""

from __future__ import annotations

import jax.numpy as jnp


def is_int(value) -> bool:
    """True for Python ints that are not bools."""
    return isinstance(value, int) and not isinstance(value, bool)


def check(ok: bool, attr: str, value, accepted: str) -> None:
    """Raises ``ValueError("<attr>: got <value>; accepted: <accepted>")`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{attr}: got {value!r}; accepted: {accepted}")


def check_dtype(dtype) -> None:
    """Raises ``ValueError`` unless ``dtype`` is None or a floating dtype (a model's compute dtype)."""
    check(
        dtype is None or jnp.issubdtype(dtype, jnp.floating),
        "dtype",
        dtype,
        "None or a floating dtype, e.g. jnp.bfloat16",
    )
