"""Which training-step settings are fastest on this machine, by model and input size.

For each model and input side, one training step (forward, cross-entropy, backward, optimiser
step) of a random batch is timed in every combination of precision (fp32, bf16 autocast) and
memory format (contiguous NCHW, channels-last), the variants alternating every round so that
load on a shared machine hits all alike. The speed-ups are relative to fp32 NCHW with a
for-loop SGD, torchvision's plain step. With ``--optimizers``, the update alone (``step()``
on fixed gradients) of SGD and AdamW, each as a for-loop over the tensors (PyTorch's CPU
default), foreach and fused. With ``--compile``, the trainer's step (its defaults for the model and
size) eager against ``torch.compile``: the first compiled step's time (the compilation), the
steady step times after, and how many steps the compiled step needs to earn its compilation
back.
``lightnets.train.runtime`` and ``lightnets.train.optim`` choose the trainer's defaults from
these figures. On a busy machine ``--threads 1 --cpu-time`` measures the CPU time of one
thread, which the load of other processes leaves alone::

    python benchmarks/train_step_sweep.py                              # 3 models x 4 sizes
    python benchmarks/train_step_sweep.py mobilenet_v2 --sizes 32 --in-chans 1 --optimizers
    python benchmarks/train_step_sweep.py --threads 1 --cpu-time --repeats 3
    python benchmarks/train_step_sweep.py resnet18 --sizes 64 128 224 --precisions fp32
    python benchmarks/train_step_sweep.py mobilenet_v2 resnet18 --sizes 224 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from unittest import mock

import torch
import torch.nn.functional as F
from rich.table import Table

from lightnets import create_model
from lightnets.hardware import native_bf16
from lightnets.profile.bench import time_interleaved
from lightnets.train.bench import trainer_step

from _common import add_common_arguments, begin  # benchmarks/_common.py

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}
FORMATS = {"nchw": torch.contiguous_format, "channels-last": torch.channels_last}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}
IMPLEMENTATIONS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True},
                   "fused": {"fused": True}}


def make_optimizer(model: torch.nn.Module, optimizer: str = "sgd",
                   implementation: str = "for-loop") -> torch.optim.Optimizer:
    options = dict(lr=1e-4, **IMPLEMENTATIONS[implementation])
    if optimizer == "sgd":
        options["momentum"] = 0.9
    return OPTIMIZERS[optimizer](model.parameters(), **options)


def make_step(name: str, side: int, batch_size: int, in_chans: int, amp: torch.dtype | None,
              memory_format: torch.memory_format) -> Callable[[], None]:
    """One training step of a fresh ``name`` on a fixed random batch."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=in_chans)
    model = model.to(memory_format=memory_format).train()
    update = make_optimizer(model)
    images = torch.randn(batch_size, in_chans, side, side).contiguous(
        memory_format=memory_format)
    labels = torch.randint(0, 10, (batch_size,))

    def step() -> None:
        update.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = F.cross_entropy(model(images).float(), labels)
        loss.backward()
        update.step()
    return step


def make_update(name: str, optimizer: str, implementation: str) -> Callable[[], None]:
    """The optimiser step alone, on random gradients of every parameter of ``name``."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    for parameter in model.parameters():
        parameter.grad = torch.randn_like(parameter)
    return make_optimizer(model, optimizer, implementation).step


def sweep(name: str, side: int, args: argparse.Namespace) -> list[tuple[str, float]]:
    """``(variant, median ms)`` for the precision x memory-format grid."""
    grid = {f"{precision} {layout}": make_step(name, side, args.batch_size, args.in_chans, amp,
                                               memory_format)
            for precision, amp in PRECISIONS.items() if precision in {"fp32", *args.precisions}
            for layout, memory_format in FORMATS.items()}
    times = time_interleaved(grid, args.warmup, args.repeats, clock=clock(args))
    return [(variant, statistics.median(t)) for variant, t in times.items()]


def clock(args: argparse.Namespace) -> Callable[[], float]:
    return time.process_time if args.cpu_time else time.perf_counter


def optimizer_table(name: str, args: argparse.Namespace) -> Table:
    """Milliseconds of one update of ``name``'s parameters per optimiser implementation."""
    updates = {(optimizer, implementation): make_update(name, optimizer, implementation)
               for optimizer in OPTIMIZERS for implementation in IMPLEMENTATIONS}
    times = time_interleaved(updates, args.warmup, 5 * args.repeats, clock=clock(args))
    table = Table(title=f"{name}: one optimiser step ({torch.get_num_threads()} threads)")
    for column in ("optimiser", "implementation", "median ms", "speed-up"):
        table.add_column(column, justify="left" if column in ("optimiser", "implementation")
                         else "right")
    for optimizer in OPTIMIZERS:
        loop_ms = statistics.median(times[optimizer, "for-loop"])
        for implementation in IMPLEMENTATIONS:
            ms = statistics.median(times[optimizer, implementation])
            table.add_row(optimizer, implementation, f"{ms:.2f}", f"{loop_ms / ms:.2f}x")
    return table


def compile_row(name: str, side: int, args: argparse.Namespace) -> list[str]:
    """The trainer's step eager and compiled: compile seconds, step ms, break-even steps.

    The eager step is timed first, before anything is compiled, and the compiled one after:
    not interleaved, because the OpenMP threads of inductor's kernels keep spinning after each
    compiled step and slowed the eager step next to them 2.7x (MobileNetV2 at 224 px, 2
    threads: 9.0 s against 3.4 s alone). The compilation is timed on an empty inductor cache
    (a fresh ``TORCHINDUCTOR_CACHE_DIR``), as a first run pays it, unless ``--warm-cache``."""
    steps = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        images = torch.randn(args.batch_size, 3, side, side)
        steps[compiled] = trainer_step(create_model(name, num_classes=10), images, compiled)[0]
    eager = statistics.median(time_interleaved({"eager": steps[False]}, args.warmup,
                                               args.repeats)["eager"])
    with contextlib.ExitStack() as stack:
        if not args.warm_cache:
            folder = stack.enter_context(tempfile.TemporaryDirectory())
            stack.enter_context(mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": folder}))
        start = time.perf_counter()
        steps[True]()  # compiles forward and backward
        compile_s = time.perf_counter() - start
        compiled = statistics.median(time_interleaved({"compiled": steps[True]}, args.warmup,
                                                      args.repeats)["compiled"])
    break_even = (f"{1e3 * compile_s / (eager - compiled):.0f}" if compiled < eager
                  else "never")
    return [name, str(side), f"{compile_s:.1f}", f"{eager:.1f}", f"{compiled:.1f}",
            f"{eager / compiled:.2f}x", break_even]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["mobilenet_v2", "resnet18",
                                                      "shufflenet_v2_x1_0"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 224])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--in-chans", type=int, default=3, choices=(1, 3),
                        help="input channels (the digits main job trains on 1)")
    parser.add_argument("--precisions", nargs="+", choices=list(PRECISIONS),
                        default=list(PRECISIONS),
                        help="the precisions of the grid, fp32 always (fp32 alone where bf16 is "
                        "emulated: its steps take minutes)")
    parser.add_argument("--optimizers", action="store_true",
                        help="also time the update of SGD and AdamW as for-loop, foreach and "
                        "fused")
    parser.add_argument("--compile", action="store_true",
                        help="only time the trainer's step eager against torch.compile")
    parser.add_argument("--warm-cache", action="store_true",
                        help="with --compile: time the compilation with inductor's usual cache")
    parser.add_argument("--cpu-time", action="store_true",
                        help="process CPU time instead of wall time (use with --threads 1)")
    add_common_arguments(parser, warmup=2, repeats=5)
    args = parser.parse_args()
    console = begin(args)
    if args.compile:
        table = Table(title=f"trainer's step, batch {args.batch_size}, "
                      f"{torch.get_num_threads()} threads: eager against torch.compile")
        for column in ("model", "side", "compile s", "eager ms", "compiled ms", "speed-up",
                       "break-even steps"):
            table.add_column(column, justify="left" if column == "model" else "right")
        for name in args.models:
            for side in args.sizes:
                console.print(f"[dim]{name} at {side}x{side}...[/]", highlight=False)
                table.add_row(*compile_row(name, side, args))
        console.print(table)
        return
    table = Table(title=f"training step, batch {args.batch_size}x{args.in_chans}, "
                  f"{torch.get_num_threads()} threads, {'CPU' if args.cpu_time else 'wall'} "
                  f"time; {native_bf16()[1]}; speed-up against fp32 NCHW (for-loop SGD)")
    for column in ("model", "side", "variant", "median ms", "images/s", "speed-up"):
        table.add_column(column, justify="left" if column in ("model", "variant") else "right")
    for name in args.models:
        for side in args.sizes:
            console.print(f"[dim]{name} at {side}x{side}...[/]", highlight=False)
            rows = sweep(name, side, args)
            baseline = dict(rows)["fp32 nchw"]
            for variant, ms in rows:
                table.add_row(name, str(side), variant, f"{ms:.1f}",
                              f"{1e3 * args.batch_size / ms:.1f}", f"{baseline / ms:.2f}x")
            table.add_section()
    console.print(table)
    if args.optimizers:
        for name in args.models:
            console.print(optimizer_table(name, args))
    console.print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on "
                  f"{os.cpu_count()} CPUs", highlight=False)


if __name__ == "__main__":
    main()
