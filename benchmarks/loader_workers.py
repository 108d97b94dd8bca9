"""How many DataLoader processes `lightnets train` should use for an image folder on this CPU.

On a 2-core machine the loader processes and the training step's threads share the same cores:
decoding and augmenting in parallel hides the data time but takes a core from the step for
that time. This script trains the same model with each ``--workers`` count, one epoch of each in
turn (so a change of load hits all alike), and prints the training images/s of every epoch and
their median over the epochs after the first (which holds the one-off costs: starting the
processes, oneDNN's first kernels)::

    python benchmarks/loader_workers.py                              # mobilenet_v2, 0 1 2
    python benchmarks/loader_workers.py --model resnet18 --workers 0 1 --epochs 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
from rich.table import Table

from lightnets.data.digits import write_digits_folder
from lightnets.train import TrainConfig, train_epochs

from _common import begin  # benchmarks/_common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--data", type=Path, default=None,
                        help="an RGB class-folder tree (default: the digits as 256 px JPEGs)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is left out of the median")
    console = begin(args)
    with tempfile.TemporaryDirectory(prefix="loader_workers-") as scratch:
        root = args.data or write_digits_folder(Path(scratch) / "digits-256")
        runs = {count: train_epochs(TrainConfig(
            model=args.model, data=str(root), epochs=args.epochs, batch_size=args.batch_size,
            workers=count, progress=False, runs_dir=str(Path(scratch) / "runs"),
            name=f"{args.model}-w{count}"), overwrite=True) for count in args.workers}
        rates: dict[int, list[float]] = {count: [] for count in args.workers}
        for epoch in range(args.epochs):
            for count, run in runs.items():
                rates[count].append(next(run)["images_per_second"])
            console.print(f"[dim]epoch {epoch + 1}: " + ", ".join(
                f"{count} workers {rates[count][-1]:.1f} img/s" for count in args.workers)
                + f"; load {os.getloadavg()[0]:.2f}[/]", highlight=False)
        for run in runs.values():  # let each run write its result and free its runtime
            for _ in run:
                pass
    table = Table(title=f"{args.model}, batch {args.batch_size}, {torch.get_num_threads()} "
                  f"threads, {os.cpu_count()} CPUs; training images/s")
    for column in ("workers", "epoch 1", "median of epochs 2+", "against the first"):
        table.add_column(column, justify="right")
    base = statistics.median(rates[args.workers[0]][1:])
    for count in args.workers:
        median = statistics.median(rates[count][1:])
        table.add_row(str(count), f"{rates[count][0]:.1f}", f"{median:.1f}",
                      f"{median / base:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
