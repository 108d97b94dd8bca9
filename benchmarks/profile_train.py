"""Where the time of a `lightnets train` run goes, by torch.profiler.

Runs ``lightnets train`` (default: one epoch of MobileNetV2 at 224 px, batch 32, on the digits
written as a folder of 256x256 JPEGs) under ``torch.profiler`` and splits the wall time of the
main process into: set-up (reading the folder, building the model, until the first batch),
data (waiting for or producing batches), forward (the model's outermost forward), backward
(autograd), optimizer (step and zero_grad), other operations (batch to the device, normalising,
loss, metric tallies), validation, checkpoint and report (checkpoints, metrics, curves), and
Python and idle time between them. The loader processes' CPU time is reported beside it.

Labels are added from outside (the training loop's evaluation, checkpoint and report functions
are wrapped, the outermost module forward is marked by a global hook), so the same script
profiles any version of the loop::

    python benchmarks/profile_train.py
    python benchmarks/profile_train.py -- --model resnet18 --amp off --no-channels-last
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch
from rich.table import Table
from torch.autograd.profiler import record_function
from torch.profiler import ProfilerActivity, profile

from lightnets.cli import main as lightnets_main
from lightnets.train import loop, report

from _common import begin  # benchmarks/_common.py

CATEGORIES = ("set-up", "data", "forward", "backward", "optimizer", "other operations",
              "validation", "checkpoint and report", "python and idle")
WRAPPED = {loop: {"validate": "validation", "save_checkpoint": "checkpoint and report"},
           report: {"write_metrics": "checkpoint and report",
                    "plot_curves": "checkpoint and report",
                    "write_config": "checkpoint and report"}}


@contextmanager
def labelled_run():
    """Label the loop's phases for the profiler while inside."""
    saved = []
    for module, names in WRAPPED.items():
        for name, label in names.items():
            function = getattr(module, name)

            @functools.wraps(function)
            def wrapper(*args, function=function, label=label, **kwargs):
                with record_function(label):
                    return function(*args, **kwargs)
            saved.append((module, name, function))
            setattr(module, name, wrapper)
    depth, open_labels = [0], []

    def before(module, args):
        if depth[0] == 0:
            open_labels.append(record_function("forward").__enter__())
        depth[0] += 1

    def after(module, args, output):
        depth[0] -= 1
        if depth[0] == 0:
            open_labels.pop().__exit__(None, None, None)

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(before),
             torch.nn.modules.module.register_module_forward_hook(after)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
        for module, name, function in saved:
            setattr(module, name, function)


def category(name: str) -> str:
    if name in CATEGORIES:
        return name
    if name.startswith("enumerate(DataLoader)"):
        return "data"
    if name.startswith("autograd::engine::evaluate_function"):
        return "backward"
    if name.startswith("Optimizer."):
        return "optimizer"
    return "other operations"


def breakdown(events, wall_s: float) -> dict[str, float]:
    """Seconds per category from the main thread's outermost events."""
    threads = defaultdict(int)
    for event in events:
        threads[event.thread] += 1
    main_thread = max(threads, key=threads.get)
    spans = sorted(((e.time_range.start, e.time_range.end, e.name) for e in events
                    if e.thread == main_thread), key=lambda span: (span[0], -span[1]))
    first = min((start for start, _, name in spans if category(name) == "data"),
                default=spans[0][0])
    seconds = dict.fromkeys(CATEGORIES, 0.0)
    seconds["set-up"] = (first - spans[0][0]) / 1e6
    covered_to = first
    for start, end, name in spans:
        if start >= covered_to:  # outermost: not inside an event already counted
            seconds[category(name)] += (end - start) / 1e6
            covered_to = end
    seconds["python and idle"] = max(0.0, wall_s - sum(seconds.values()))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train_args", nargs="*", help="after --: more `lightnets train` "
                        "options (they override the defaults here)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", default=None, help="image folder (default: digits as JPEGs)")
    args = parser.parse_args()
    console = begin(args)
    with tempfile.TemporaryDirectory(prefix="profile_train-") as scratch:
        if args.data is None:  # imported here: with --data, older lightnets profile too
            from lightnets.data.digits import write_digits_folder
            args.data = str(write_digits_folder(Path(scratch) / "digits-256"))
        data = args.data
        argv = ["train", "--model", "mobilenet_v2", "--data", data, "--epochs",
                str(args.epochs), "--batch-size", "32", "--no-progress", "--runs-dir",
                str(Path(scratch) / "runs"), "--name", "profiled", *args.train_args]
        children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        with labelled_run(), profile(activities=[ProfilerActivity.CPU]) as profiler:
            status = lightnets_main(argv)
        wall = time.perf_counter() - start
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status != 0:
        raise SystemExit(status)
    seconds = breakdown(profiler.events(), wall)
    worker_cpu = ((children.ru_utime + children.ru_stime)
                  - (children_before.ru_utime + children_before.ru_stime))
    table = Table(title=f"lightnets {' '.join(argv[1:3] + args.train_args)}: {args.epochs} "
                  f"epoch(s), {wall:.1f} s wall, {torch.get_num_threads()} threads")
    table.add_column("where the main process spent its time")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    for name, value in seconds.items():
        table.add_row(name, f"{value:.1f}", f"{value / wall:.0%}")
    console.print(table)
    console.print(f"data-loading processes: {worker_cpu:.1f} CPU-seconds; load average "
                  f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after, on "
                  f"{os.cpu_count()} CPUs", highlight=False)


if __name__ == "__main__":
    main()
