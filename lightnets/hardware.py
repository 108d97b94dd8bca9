"""What this CPU computes natively: bf16 (AVX512-BF16 / AMX on x86, BF16 on Arm) and int8 dot
products (VNNI / AMX). Training picks its autocast from it, the inference backends refuse
emulated bf16 with it, and int8 quantization chooses its weight range by it."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}           # x86 AVX512 / AMX, Arm BF16
INT8_DOT_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm"}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16() -> tuple[bool, str]:
    """Whether this CPU computes bf16 natively, and the evidence in words."""
    found = sorted(cpu_flags() & BF16_FLAGS)
    try:  # PyTorch's own view (oneDNN), where this private helper exists
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            found = found or ["oneDNN bf16"]
    except (AttributeError, RuntimeError):
        pass
    if found:
        return True, f"native bf16 ({', '.join(found)})"
    isa = torch.backends.cpu.get_cpu_capability()
    return False, (f"no native bf16 on this CPU (best ISA {isa}; no avx512_bf16 / amx_bf16 "
                   f"flag): bf16 would be emulated in fp32 arithmetic, slower and less accurate")


def native_int8_dot() -> bool:
    """Whether this CPU has int8 dot-product instructions (VNNI, AMX, Arm dot product), whose
    32-bit accumulation makes full-range 8-bit weights safe. Without them x86 multiplies uint8
    by int8 with ``vpmaddubsw``, whose 16-bit pair sums can saturate."""
    return bool(cpu_flags() & INT8_DOT_FLAGS)
