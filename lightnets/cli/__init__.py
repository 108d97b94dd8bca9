"""The ``lightnets`` command. Each sub-command is a module of this package defining
``register(subparsers)`` (adds its parser and sets ``func``, and ``requires`` where it needs
optional packages); modules are found automatically, so a new sub-command is one new file. What
they share is in ``_common``.

Every failure a user can cause ends here as one line, ``error: ...``, and exit status 2: bad
values (``ValueError``, ``CommandError``), missing optional packages (checked before the command
starts) and files that cannot be read or written (``OSError``)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import lightnets
from lightnets.cli._common import CommandError, err_console, print_error


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
        if getattr(args, "requires", None):  # optional packages, before any work starts
            from lightnets.optional import require_all

            require_all(args.requires(args))
        return int(args.func(args) or 0)
    except (CommandError, ValueError, OSError) as error:
        print_error(error)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
