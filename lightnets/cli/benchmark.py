"""``lightnets benchmark CKPT_OR_MODEL``: export to every format whose packages are installed,
check each file in its own runtime, and tabulate size, the task's metric, latency at batch 1
and the ratio to ONNX Runtime (:mod:`lightnets.export.benchmark`)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from lightnets.cli._common import (CommandError, console, parse_input_size, progress_bar,
                                   warnings_as_lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="export to every installed format and tabulate size, metric, speed",
        description="Export a checkpoint (or a registered model at initial weights) to every "
        "format whose packages are installed, check each file in its own runtime against the "
        "eager model, score it on the checkpoint's validation data, add an int8 file per "
        "runtime with int8 and an fp16 one per runtime with fp16 weights, time everything at "
        "batch 1 interleaved in one process, and write "
        "benchmark.csv, benchmark.md and benchmark.png.")
    parser.add_argument("target", metavar="CKPT_OR_MODEL",
                        help="a checkpoint or run folder (its best.pt), or a registered model")
    parser.add_argument("--formats", metavar="LIST", default=None,
                        help="comma-separated formats (default: every registered one)")
    parser.add_argument("--output", metavar="FOLDER", default=None,
                        help="where the files and reports go (default: benchmark/ beside the "
                        "checkpoint, or benchmark-<model>/ here)")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: the checkpoint's or the model's)")
    parser.add_argument("--threads", type=int, default=2, help="threads of every runtime "
                        "(default 2)")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls each (default 30)")
    parser.add_argument("--limit-batches", type=int, default=None, metavar="N",
                        help="score on the first N validation batches only")
    parser.add_argument("--no-reduced", "--no-int8", dest="reduced", action="store_false",
                        help="no int8 or fp16 rows (by default a checkpoint that names its data "
                        "gets one per runtime with int8, calibrated on that data as quantize "
                        "does, and one per runtime whose file holds fp16 weights)")
    parser.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                        help="an int8 or fp16 row dropping more than this is marked (default 1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(func=run)


def open_target(target: str, input_size: tuple[int, ...] | None):
    """A checkpoint (file or run folder) when the path exists, else a registered model."""
    from lightnets.checkpoint import checkpoint_path
    from lightnets.export import load_source
    from lightnets.registry import list_models

    if Path(target).expanduser().exists():
        checkpoint = checkpoint_path(target, prefer="best")
        return load_source(checkpoint=checkpoint, input_size=input_size), checkpoint.parent / \
            "benchmark"
    if target not in list_models():
        raise CommandError(f"{target!r} is neither a checkpoint, a run folder nor a registered "
                           "model (lightnets list)")
    return load_source(target, input_size=input_size), Path(f"benchmark-{target}")


def run(args: argparse.Namespace) -> int:
    from lightnets.export.benchmark import benchmark, count_steps, write_reports

    formats = [name.strip() for name in args.formats.split(",")] if args.formats else None
    with warnings_as_lines():
        source, folder = open_target(args.target, args.input_size)
        folder = Path(args.output) if args.output else folder
        total = count_steps(source, formats, args.reduced)
        with progress_bar(total, args.progress and sys.stderr.isatty()) as progress:
            task = progress.add_task("benchmark", total=total) if progress else None

            def step(name: str) -> None:
                if progress:
                    progress.update(task, description=name, advance=1)
            result = benchmark(source, folder, formats, args.threads, args.repeats,
                               args.limit_batches, step, args.reduced, args.max_drop)
        written = write_reports(result, folder)
    if args.json:
        print(json.dumps({"rows": [asdict(row) for row in result.rows],
                          "not_installed": result.not_installed,
                          **{key: str(path) for key, path in written.items() if path}}))
        return 0
    print_table(result)
    for name, hint in result.not_installed.items():
        console.print(f"{name}: not installed ({hint})", highlight=False, soft_wrap=True)
    console.print("wrote " + ", ".join(str(path) for path in written.values() if path),
                  highlight=False, soft_wrap=True)
    return 0


def print_table(result) -> None:
    from rich.table import Table

    from lightnets.export.benchmark import cells, column_names

    table = Table(title=f"{result.model}: batch 1, {result.threads} threads")
    for name in column_names(result):
        table.add_column(name, justify="left" if name in ("format", "runtime", "note")
                         else "right")
    for row in result.rows:
        table.add_row(*cells(row))
    console.print(table)
