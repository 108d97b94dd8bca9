"""What `lightnets train`'s calibration chooses on this CPU, and by how much it beats the plain
loop's own setting, for each model at 224x224, batch 32 (the issue-31 comparison).

A run of at least 500 steps times each candidate setting (the plain loop's fp32 / NCHW /
PyTorch-default optimiser first, then fp32 and, where the CPU computes bf16 natively, bf16 in
both memory formats with the fused optimiser) for 2 warm-up and 3 timed training steps on its
real model and batch, and trains with the fastest (the plain one unless another beats it by
more than 5%). This script makes the same timings with the same functions
(:func:`lightnets.train.calibrate.time_steps`, :func:`~lightnets.train.calibrate.choose`), with
more timed steps, and prints each candidate's milliseconds per step and the chosen one's
speed-up over the plain setting. It times the model's step only: data loading is
``benchmarks/train_vs_torchvision.py``'s business::

    python benchmarks/calibration_choice.py
    python benchmarks/calibration_choice.py --models resnet18 --timed 10
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from rich.table import Table

from lightnets.hardware import native_bf16
from lightnets.registry import create_model
from lightnets.train.calibrate import PLAIN, candidates, choose, time_steps

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["mobilenet_v2", "resnet18", "shufflenet_v2_x1_0"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--timed", type=int, default=5, help="timed steps per candidate")
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    console.print(f"native bf16: {native_bf16()}", highlight=False)

    def loss(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(images), labels)

    table = Table(title=f"ms per training step at {args.size}x{args.size}, batch "
                  f"{args.batch_size}, {torch.get_num_threads()} threads (median of "
                  f"{args.timed})")
    for column in ("model", "setting", "ms per step", "x plain", "chosen"):
        table.add_column(column, justify="left" if column in ("model", "setting") else "right")
    records = []
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        batch = (torch.randn(args.batch_size, 3, args.size, args.size),
                 torch.randint(10, (args.batch_size,)))
        chosen, times = choose(candidates(), lambda s: time_steps(
            model, s, batch, loss, timed=args.timed))
        for setting, seconds in times.items():
            ratio = times[PLAIN] / seconds
            table.add_row(name, setting.label(), f"{seconds * 1000:.0f}", f"{ratio:.2f}x",
                          "<-" if setting == chosen else "")
            records.append({"model": name, "setting": setting.label(),
                            "ms_per_step": round(seconds * 1000, 1), "speedup": round(ratio, 3),
                            "chosen": setting == chosen})
        console.print(f"[dim]{name}: chose {chosen.label()}, "
                      f"{times[PLAIN] / times[chosen]:.2f}x the plain setting[/]")
    console.print(table)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
