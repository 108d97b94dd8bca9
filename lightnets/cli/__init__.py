"""The ``lightnets`` command. Each sub-command is a module of this package defining
``register(subparsers)`` (adds its parser and sets ``func``); modules are found automatically,
so a new sub-command is one new file. What they share is in ``_common``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import lightnets
from lightnets.cli._common import CommandError, err_console


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lightnets", description="Classic and lightweight CNNs: zoo, profiling, training, "
        "deployment.")
    parser.add_argument("--version", action="version", version=f"lightnets {lightnets.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_"):  # private helpers, not sub-commands
            continue
        importlib.import_module(f"{__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (CommandError, ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        err_console.print(f"[bold red]error:[/] {message}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
