"""Command-line test helpers: tiny bench settings (``run_cli`` is in tests/conftest.py)."""

from __future__ import annotations

# `lightnets bench` / `zoo` settings that measure in moments
TINY_BENCH = ["--repeats", "2", "--warmup", "1", "--input-size", "32", "--peak-size", "64"]
