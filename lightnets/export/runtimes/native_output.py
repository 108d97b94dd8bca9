"""Capturing what a runtime's C++ code prints: converters such as MNN's write their progress
straight to the process's stdout and stderr (file descriptors 1 and 2), past Python's
``sys.stdout``, so ``contextlib.redirect_stdout`` cannot hold it back."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def captured_native_output() -> Iterator[list[str]]:
    """Send file descriptors 1 and 2 to a temporary file while the block runs; the yielded list
    holds the captured lines afterwards (for an error message)."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            lines.extend(sink.read().decode(errors="replace").splitlines())


def last_error_line(lines: list[str], default: str) -> str:
    """The last line that reads like an error in a tool's output, else its last line."""
    errors = [line.strip() for line in lines if "error" in line.lower() or "fail" in line.lower()]
    rest = [line.strip() for line in lines if line.strip()]
    return (errors or rest or [default])[-1][:300]
