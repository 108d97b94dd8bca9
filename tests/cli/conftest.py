"""Command-line test helpers: one ``lightnets`` call with its output, tiny bench settings."""

from __future__ import annotations

import pytest

from lightnets.cli import main

# `lightnets bench` / `zoo` settings that measure in moments
TINY_BENCH = ["--repeats", "2", "--warmup", "1", "--input-size", "32", "--peak-size", "64"]


@pytest.fixture
def run_cli(capsys):
    """``run_cli(*argv) -> (status, stdout, stderr)`` of one ``lightnets`` command."""
    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        captured = capsys.readouterr()
        return status, captured.out, captured.err
    return run
