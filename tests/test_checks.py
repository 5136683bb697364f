"""Constructor checks shared by the models."""

import jax.numpy as jnp
import pytest

from snnjax.checks import check, check_dtype, is_int


def test_is_int_rejects_bools_and_floats():
    assert is_int(3) and not is_int(True) and not is_int(3.0)


def test_check_names_the_attribute_and_accepted_values():
    check(True, "T", 4, "an int >= 1")
    with pytest.raises(ValueError, match=r"^T: got 0; accepted: an int >= 1$"):
        check(False, "T", 0, "an int >= 1")


def test_check_dtype_accepts_floating_dtypes_only():
    for dtype in (None, jnp.float32, jnp.bfloat16, "float16"):
        check_dtype(dtype)
    with pytest.raises(ValueError, match=r"^dtype: got .*int8.*; accepted: None or a floating dtype"):
        check_dtype(jnp.int8)
