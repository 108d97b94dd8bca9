"""What the sub-commands share: the consoles, the one-line error type and its printer, the
input-size argument type, a progress bar and warnings printed as single lines. Private to
``lightnets.cli`` (the sub-command discovery skips modules whose name starts with ``_``).

Messages are printed with their rich markup escaped: a message quoting
``pip install 'lightnets[train]'`` or a file named ``[1].png`` prints as written."""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

# A pipe or CI log gets wide lines rather than names cut to fit 80 columns.
console = Console(width=None if Console().is_terminal else 160)
err_console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 160)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


def error_text(error: BaseException) -> str:
    """The one-line text of a user-facing error; an ``OSError`` from the system names its file
    and the reason (``runs/x: Permission denied``)."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return " ".join(str(error).split()) or type(error).__name__


def print_error(error: BaseException) -> None:
    """``error: <text>`` on stderr, as one line whatever the width."""
    err_console.print(f"[bold red]error:[/] {escape(error_text(error))}", highlight=False,
                      soft_wrap=True)


def parse_input_size(text: str) -> tuple[int, ...]:
    """``224``, ``224x224`` or ``3x224x224`` (an argparse type)."""
    try:
        dims = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        dims = ()
    if not 1 <= len(dims) <= 3 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected S, HxW or CxHxW with positive integers, "
                                         f"got {text!r}")
    return dims


# the libraries pretrained weights come from (lightnets.weights.SOURCES, which a test keeps equal;
# named here so that building the parser imports no torch)
WEIGHT_SOURCES = ("lightnets", "torchvision", "timm", "smp")


def add_weights_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint CKPT`` (a lightnets checkpoint or run folder), or ``--weights PATH`` of
    ``--model NAME`` (torchvision or timm weights, a Hugging Face folder, or a lightnets file),
    with ``--source`` to say which library they come from."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="CKPT",
                       help="lightnets checkpoint file, or a run folder (its best.pt)")
    which.add_argument("--weights", metavar="PATH", help="pretrained weights of --model: a "
                       "torchvision or timm file (.pth, .bin, .safetensors), a Hugging Face-style "
                       "folder (config.json + weights) or a lightnets file")
    parser.add_argument("--model", metavar="NAME", help="the registered model the --weights are "
                        "for (a lightnets file or a Hugging Face folder names it)")
    parser.add_argument("--source", choices=WEIGHT_SOURCES,
                        help="the library the --weights come from (default: detected)")


def progress_bar(total: int, enabled: bool = True) -> Any:
    """A rich progress bar on stderr (a no-op context yielding ``None`` when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err_console, transient=True)


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Print each warning raised inside as one clean line on stderr (e.g. skipped images)."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *rest, **kw: err_console.print(
            f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        yield
