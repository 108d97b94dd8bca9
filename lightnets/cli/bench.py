"""``lightnets bench NAME [NAME ...]``: latency, throughput and achieved GFLOP/s, optionally
against torchvision's or timm's implementation of the same architecture in the same process."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from lightnets.cli._common import CommandError, console, err_console, parse_input_size, progress_bar
from lightnets.export.backends import BACKENDS, backend_requirements


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench", help="measure latency and throughput",
        description="Time models (median and p90 latency, images/s, GFLOP/s against the "
        "machine's measured fp32 matmul peak). With --vs, the peer's implementation of the same "
        "architecture runs interleaved with ours and the latency ratio is printed. With --backend, "
        "lightnets' inference backends (eager, compile, onnxruntime, openvino) are timed side "
        "by side with torchvision's eager model.")
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="registered model names, or checkpoints (files or run folders: "
                        "their trained, e.g. pruned, models)")
    parser.add_argument("--mode", choices=("infer", "train"), default="infer",
                        help="infer: forward under inference_mode; train: the training step "
                        "(forward, loss, backward, SGD update), lightnets' with the trainer's "
                        "defaults for the device and input size, the peer's plain: fp32, "
                        "default optimiser (default infer)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1], metavar="N",
                        help="one or more batch sizes (default 1)")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: each model's default input size)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--channels-last", action="store_true",
                        help="channels-last memory format for model and input (in train mode "
                        "for the peer: lightnets' step chooses its own)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--repeats", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--vs", choices=("torchvision", "timm"), default=None,
                        help="also time the peer's implementation, alternating every repeat")
    parser.add_argument("--peak-size", type=int, default=2048, metavar="N",
                        help="matrix size of the fp32 matmul measuring the peak (0: skip)")
    add_backend_arguments(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON only on stdout")
    output.add_argument("--csv", nargs="?", const="-", default=None, metavar="PATH",
                        help="write CSV to PATH (or stdout when no PATH is given)")
    parser.set_defaults(func=run, requires=lambda args: backend_requirements(args.backend or []))


def pair_ratios(results: list[Any]) -> dict[int, float]:
    """For every lightnets result followed by its peer's: index of ours -> ours / peer latency."""
    return {i: results[i].median_ms / results[i + 1].median_ms
            for i in range(len(results) - 1)
            if results[i].impl == "lightnets" and results[i + 1].impl != "lightnets"}


def load_models(names: list[str]) -> list[tuple[str, str, Any]]:
    """``(registered name, label, model or None)`` per NAME: a checkpoint path gives its
    model, labelled by the file."""
    from pathlib import Path

    from lightnets.checkpoint import load_checkpoint
    from lightnets.registry import resolve_name

    models = []
    for name in names:
        if Path(name).exists():
            state = load_checkpoint(name, prefer="best")
            label = f"{state.model_name} ({'pruned, ' if state.pruning else ''}{state.path})"
            models.append((resolve_name(state.model_name), label, state.build_model().eval()))
        else:
            models.append((resolve_name(name), resolve_name(name), None))
    return models


def run(args: argparse.Namespace) -> int:
    import torch

    from lightnets.profile.bench import benchmark, build_peer, measure_peak_gflops
    from lightnets.train.bench import trainer_step

    if min(args.batch_size) < 1 or args.repeats < 1 or args.warmup < 0:
        raise CommandError("--batch-size and --repeats must be >= 1, --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            raise CommandError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.backend:
        if args.csv:
            raise CommandError("--backend prints a table or --json, not --csv")
        return run_backend_bench(args)
    models = load_models(args.names)
    if args.vs:  # fail before any timing when a peer is missing
        for name, _, _ in models:
            build_peer(args.vs, name, "meta")
    impls = 2 if args.vs else 1
    total = len(models) * len(args.batch_size) * impls * (args.warmup + args.repeats)
    results = []
    with progress_bar(total, sys.stderr.isatty()) as progress:
        peak = None
        if args.peak_size:
            if progress is None:
                err_console.print(f"measuring the fp32 matmul peak ({args.peak_size}^2)...")
            peak = measure_peak_gflops(args.peak_size, device=args.device)
        task = progress.add_task("bench", total=total) if progress else None
        for name, label, model in models:
            for batch_size in args.batch_size:
                if progress:
                    progress.update(task, description=f"{label} b{batch_size}")
                else:
                    err_console.print(f"timing {label} at batch {batch_size}...",
                                      highlight=False)
                timed = benchmark(
                    name, batch_size, args.input_size, args.mode, args.warmup, args.repeats,
                    args.device, args.channels_last, args.vs, peak,
                    on_step=(lambda: progress.advance(task)) if progress else None, model=model,
                    our_step=trainer_step if args.mode == "train" else None)
                timed[0].model = label
                results += timed
    ratios = pair_ratios(results)
    records = [result.as_dict() for result in results]
    for index, ratio in ratios.items():
        records[index]["ratio_vs_peer"] = records[index + 1]["ratio_vs_peer"] = round(ratio, 4)
    if args.json:
        print(json.dumps({"peak_gflops": peak, "threads": torch.get_num_threads(),
                          "results": records}))
    elif args.csv:
        write_csv(records, args.csv)
    else:
        print_table(results, ratios, peak, console)
    return 0


def write_csv(records: list[dict[str, Any]], path: str) -> None:
    columns = list(dict.fromkeys(key for record in records for key in record))
    rows = [{**r, "input_size": "x".join(map(str, r["input_size"]))} for r in records]
    stream = sys.stdout if path == "-" else open(path, "w", newline="")
    try:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if stream is not sys.stdout:
            stream.close()


def print_table(results: list[Any], ratios: dict[int, float], peak: float | None,
                console: Any) -> None:
    from rich.table import Table

    first = results[0]
    title = (f"{first.mode} on {first.device}, {first.threads} threads"
             f"{f'; fp32 matmul peak {peak:.1f} GFLOP/s' if peak else ''}")
    table = Table(title=title)
    for column in ("model", "impl", "settings", "batch", "input", "median ms", "p90 ms",
                   "images/s", "GFLOP/s", "% of peak"):
        table.add_column(column, justify="left" if column in ("model", "impl", "settings")
                         else "right")
    for result in results:
        efficiency = result.efficiency
        table.add_row(result.model, result.impl, result.settings, str(result.batch_size),
                      "x".join(map(str, result.input_size[1:])), f"{result.median_ms:.2f}",
                      f"{result.p90_ms:.2f}", f"{result.images_per_s:.1f}",
                      f"{result.gflops:.1f}", f"{100 * efficiency:.1f}" if efficiency else "")
    console.print(table)
    for index, ratio in ratios.items():
        ours, peer = results[index], results[index + 1]
        verdict = (f"lightnets {1 / ratio:.2f}x faster" if ratio < 1
                   else f"{peer.impl} {ratio:.2f}x faster" if ratio > 1 else "equal")
        console.print(f"{ours.model} batch {ours.batch_size}: lightnets {ours.median_ms:.2f} ms, "
                      f"{peer.impl} {peer.median_ms:.2f} ms, ratio lightnets/{peer.impl} "
                      f"{ratio:.3f} ({verdict})", highlight=False)


# -- `lightnets bench NAME --backend ...` --------------------------------------------------------
def add_backend_arguments(parser: Any) -> None:
    """``--backend``, ``--precision`` and ``--allow-emulated-bf16`` for ``lightnets bench``."""
    parser.add_argument("--backend", nargs="+", default=None, metavar="BACKEND",
                        help=f"time inference backends side by side with torchvision's eager "
                        f"model: {', '.join(BACKENDS)} or all")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="with --backend: numeric precision (default fp32; bf16 is refused "
                        "where the CPU lacks native bf16)")
    parser.add_argument("--allow-emulated-bf16", action="store_true",
                        help="with --backend --precision bf16: run bf16 even where it is emulated")


def run_backend_bench(args: Any) -> int:
    """``lightnets bench NAME... --backend ...``: a table (or JSON) of every backend."""
    import torch

    from lightnets.export.timing import bench_backends
    from lightnets.models.base import normalize_input_size
    from lightnets.registry import meta_model

    if getattr(args, "mode", "infer") != "infer":
        raise ValueError("--backend times inference only; drop --mode train")
    if getattr(args, "vs", None) not in (None, "torchvision"):
        raise ValueError("--backend compares with torchvision; drop --vs timm")
    results = []
    for name, label, model in load_models(args.names):
        size = None
        if args.input_size is not None:
            default = (model or meta_model(name)).default_input_size
            size = normalize_input_size(tuple(args.input_size), default)
        timed = bench_backends(
            name, args.backend, args.batch_size, size, args.precision,
            warmup=args.warmup, repeats=args.repeats,
            allow_emulated_bf16=args.allow_emulated_bf16,
            log=lambda message: err_console.print(message, highlight=False), model=model)
        for row in timed:
            row.model = label if row.backend in BACKENDS else row.model
        results += timed
    if args.json:
        print(json.dumps({"threads": torch.get_num_threads(),
                          "results": [row.as_dict() for row in results]}))
    else:
        console.print(backend_table(results))
    return 0


def backend_table(results: list[Any]) -> Any:
    """A rich table: one row per model, batch size and backend."""
    import torch
    from rich.table import Table

    table = Table(title=f"inference backends, {torch.get_num_threads()} threads "
                  "(speed-up against torchvision eager)")
    for column in ("model", "batch", "backend", "precision", "median ms", "p90 ms", "images/s",
                   "speed-up", "notes"):
        table.add_column(column, justify="right" if column in ("batch", "median ms", "p90 ms",
                                                               "images/s", "speed-up") else "left")
    for row in results:
        speedup = f"{row.speedup_vs_baseline:.2f}x" if row.speedup_vs_baseline else ""
        table.add_row(row.model, str(row.batch_size), row.backend, row.precision,
                      f"{row.median_ms:.2f}", f"{row.p90_ms:.2f}", f"{row.images_per_s:.1f}",
                      speedup, row.notes)
    return table
