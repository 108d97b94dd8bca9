"""What every benchmark script shares: the options ``--threads``, ``--warmup``, ``--repeats`` and
``--json``, the console, the line that says where the figures were measured, and the JSON file.

Each script imports it as a sibling (``python benchmarks/NAME.py`` puts this folder on
``sys.path``)::

    from _common import add_common_arguments, begin, write_json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, warmup=3, repeats=10, json=True)
    args = parser.parse_args()
    console = begin(args)           # threads set, environment line printed
    ...
    write_json(args.json, records)  # when --json PATH was given
"""

from __future__ import annotations

import argparse
import json as json_module
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

STDOUT = "-"  # --json -: the records on standard output, everything else on standard error
WIDTH = 160  # the console's width where it is not a terminal: full lines in pipes and logs


def add_common_arguments(parser: argparse.ArgumentParser, *, threads: bool | int = True,
                         warmup: int | None = None, repeats: int | None = None,
                         json: bool = False) -> argparse.ArgumentParser:
    """Add the shared options a script uses: ``--threads`` (``True``: torch's choice by default;
    an int: that default; ``False``: no option), ``--warmup`` and ``--repeats`` with the given
    defaults (``None``: no option), ``--json PATH`` if ``json``."""
    if threads is not False:
        default = None if threads is True else threads
        parser.add_argument("--threads", type=int, default=default,
                            help="torch threads, as many for lightnets' ONNX Runtime and "
                            "OpenVINO sessions (default: "
                            + ("torch's choice" if default is None else str(default)) + ")")
    if warmup is not None:
        parser.add_argument("--warmup", type=int, default=warmup,
                            help=f"untimed calls before timing (default {warmup})")
    if repeats is not None:
        parser.add_argument("--repeats", type=int, default=repeats,
                            help=f"timed calls; medians are over these (default {repeats})")
    if json:
        parser.add_argument("--json", metavar="PATH", default=None,
                            help="also write the results as JSON to PATH ('-': standard output, "
                            "the tables then go to standard error)")
    return parser


def make_console(stderr: bool = False) -> Console:
    """The console: the terminal's width, or :data:`WIDTH` columns in a pipe or log."""
    return Console(stderr=stderr, width=None if Console(stderr=stderr).is_terminal else WIDTH)


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Where the figures are measured: CPU, core count, torch threads, versions, load."""
    import torchvision

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpu": cpu_name(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "load_average": [round(v, 2) for v in load]}


def environment_line(env: dict[str, Any] | None = None) -> str:
    env = env or environment()
    return (f"{env['cpu']}, {env['cpus']} CPUs, {env['threads']} threads; torch {env['torch']}, "
            f"torchvision {env['torchvision']}, Python {env['python']}; load average "
            f"{env['load_average'][0]:.2f} / {env['load_average'][1]:.2f} (1 / 5 min)")


def begin(args: argparse.Namespace | None = None) -> Console:
    """What every script does first: ``--threads`` applied, the console made (on standard error
    when ``--json -`` takes standard output), the environment line printed."""
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    console = make_console(stderr=getattr(args, "json", None) == STDOUT)
    console.print(environment_line(), style="dim", highlight=False, markup=False)
    return console


def write_json(path: str | Path | None, results: Any, **extra: Any) -> None:
    """``{"environment": ..., **extra, "results": results}`` as JSON to ``path`` (``-``: standard
    output); nothing when ``path`` is ``None``."""
    if path is None:
        return
    text = json_module.dumps({"environment": environment(), **extra, "results": results},
                             indent=1, default=str) + "\n"
    if str(path) == STDOUT:
        sys.stdout.write(text)
    else:
        Path(path).write_text(text)
