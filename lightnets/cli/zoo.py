"""``lightnets zoo``: one table of every registered model (params, MACs, activation memory, CPU
latency at batch 1, throughput at batch 32, published top-1) as CSV, Markdown and a PNG chart."""

from __future__ import annotations

import argparse
import os
import sys

from lightnets.cli._common import (CommandError, console, err_console, parse_input_size,
                                   progress_bar, warnings_as_lines)
from lightnets.registry import CLASSIFICATION, TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo", help="measure the whole zoo into CSV, Markdown and a chart",
        description="Measure every registered model (or those matching --pattern): params, "
        "MACs and activation memory on the meta device, latency at batch 1 and throughput at "
        "--batch-size on the CPU; write zoo.csv, zoo.md and zoo.png to --out.")
    parser.add_argument("--pattern", nargs="+", default=["*"], metavar="PATTERN",
                        help="shell-style wildcards, e.g. 'mobilenet*' (default: all)")
    parser.add_argument("--task", choices=TASKS,
                        default=CLASSIFICATION,
                        help="which models (default classification: the chart sets top-1 "
                        "against cost; segmenters are measured at 520x520)")
    parser.add_argument("--out", default="zoo", metavar="DIR",
                        help="output folder (default ./zoo)")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: each model's default input size)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="batch size of the throughput measurement (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps (default 10)")
    parser.add_argument("--peak-size", type=int, default=2048, metavar="N",
                        help="matrix size of the fp32 matmul measuring the peak (0: skip)")
    parser.add_argument("--no-bench", action="store_true",
                        help="complexity only: skip latency and throughput")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from lightnets.files import check_writable
    from lightnets.optional import by_product
    from lightnets.profile.bench import measure_peak_gflops
    from lightnets.profile.zoo import machine_line, plot_zoo, write_csv, write_markdown, zoo_row
    from lightnets.registry import list_models

    names = list_models(args.pattern, task=args.task)
    if not names:
        raise CommandError(f"no {args.task} model matches {' '.join(args.pattern)!r}; try "
                           "`lightnets list`")
    if args.batch_size < 1 or args.repeats < 1 or args.warmup < 0:
        raise CommandError("--batch-size and --repeats must be >= 1, --warmup >= 0")
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    check_writable(args.out, "--out folder")  # before measuring, not after
    paths = {kind: os.path.join(args.out, f"zoo.{kind}") for kind in ("csv", "md", "png")}
    with warnings_as_lines():
        if not by_product("matplotlib", paths["png"]):
            del paths["png"]
    measure = not args.no_bench
    peak = measure_peak_gflops(args.peak_size) if measure and args.peak_size else None
    steps_per_model = 2 * (args.warmup + args.repeats) if measure else 1
    rows = []
    interactive = sys.stderr.isatty()
    with progress_bar(len(names) * steps_per_model, interactive) as progress:
        task = progress.add_task("zoo", total=len(names) * steps_per_model) if progress else None
        for index, name in enumerate(names, 1):
            if progress:
                progress.update(task, description=f"{name} ({index}/{len(names)})")
            else:
                err_console.print(f"[{index}/{len(names)}] {name}", highlight=False)
            rows.append(zoo_row(name, args.input_size, args.batch_size, args.warmup,
                                args.repeats, peak, measure,
                                on_step=(lambda: progress.advance(task)) if progress else None))
            if progress and not measure:
                progress.advance(task)
    write_csv(rows, paths["csv"])
    write_markdown(rows, paths["md"], peak)
    if "png" in paths:
        plot_zoo(rows, paths["png"], f"lightnets zoo ({machine_line(peak)})")
    console.print(f"{len(rows)} models: " + ", ".join(paths.values()), highlight=False)
    return 0
