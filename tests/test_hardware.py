"""What the CPU computes natively: the bf16 verdict agrees with the CPU flags."""

from __future__ import annotations

from lightnets.hardware import cpu_flags, native_bf16


def test_native_bf16_matches_the_cpu_flags():
    native, why = native_bf16()
    flags = cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        assert native
    assert isinstance(why, str) and why
