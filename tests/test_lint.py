"""ruff, configured in pyproject.toml ([tool.ruff]), finds nothing in the package, the tests and
the benchmarks (ruff is in the dev extra)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TREES = ["lightnets", "tests", "benchmarks"]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", *TREES],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (f"`ruff check {' '.join(TREES)}` found:\n"
                                  + (done.stdout + done.stderr).strip())
