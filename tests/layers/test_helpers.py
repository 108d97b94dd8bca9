"""``make_divisible``: channel counts rounded to a multiple of the divisor."""

from __future__ import annotations

import pytest

from lightnets.layers import make_divisible


@pytest.mark.parametrize("value,divisor,expected", [
    (32, 8, 32), (32 * 0.35, 8, 16), (24 * 0.5, 8, 16), (96 * 0.35, 8, 32), (3, 8, 8),
    (16 * 0.25, 8, 8), (10, 4, 12), (91, 8, 88), (100, 8, 104)])
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected
    assert make_divisible(value, divisor) % divisor == 0
