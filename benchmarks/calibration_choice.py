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
``benchmarks/train_vs_torchvision.py``'s business. ``--task detection`` times detectors on the
task's own random batch (one box per image) among its candidates (fp32 only)::

    python benchmarks/calibration_choice.py
    python benchmarks/calibration_choice.py --models resnet18 --timed 10
    python benchmarks/calibration_choice.py --task detection --size 320 --batch-size 16 \
        --models gfl_shufflenet_v2_x1_0 fcos_shufflenet_v2_x1_0

``--compile`` also times the chosen setting with the model under ``torch.compile`` (not a
candidate of the trainer's: its first step compiles, and on the CPUs measured it did not pay)::

    python benchmarks/calibration_choice.py --compile
"""

from __future__ import annotations

import argparse

import torch
from rich.table import Table

from lightnets.hardware import native_bf16
from lightnets.registry import create_model
from lightnets.tasks import TASKS, get_task
from lightnets.train.calibrate import PLAIN, candidates, choose, time_steps

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["mobilenet_v2", "resnet18", "shufflenet_v2_x1_0"])
    parser.add_argument("--task", choices=sorted(TASKS), default="classification")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--timed", type=int, default=5, help="timed steps per candidate")
    parser.add_argument("--compile", action="store_true",
                        help="also time the chosen setting under torch.compile")
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    console.print(f"native bf16: {native_bf16()}", highlight=False)

    task = get_task(args.task)

    def loss(model: torch.nn.Module, images: object, labels: object) -> torch.Tensor:
        return task.forward_loss(model, images, labels, 0.0, 0.0)[1]

    table = Table(title=f"ms per training step at {args.size}x{args.size}, batch "
                  f"{args.batch_size}, {torch.get_num_threads()} threads (median of "
                  f"{args.timed})")
    for column in ("model", "setting", "ms per step", "x plain", "chosen"):
        table.add_column(column, justify="left" if column in ("model", "setting") else "right")
    records = []
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=10 + task.background_classes,
                             **task.size_args(args.size))
        batch = task.calibration_batch(args.batch_size, (3, args.size, args.size), 10)
        settings = candidates(precisions=task.calibration_precisions)
        chosen, times = choose(settings, lambda s: time_steps(model, s, batch, loss,
                                                              timed=args.timed))
        for setting, seconds in times.items():
            ratio = times[PLAIN] / seconds
            table.add_row(name, setting.label(), f"{seconds * 1000:.0f}", f"{ratio:.2f}x",
                          "<-" if setting == chosen else "")
            records.append({"model": name, "setting": setting.label(),
                            "ms_per_step": round(seconds * 1000, 1), "speedup": round(ratio, 3),
                            "chosen": setting == chosen})
        if args.compile:
            compiled: dict[int, torch.nn.Module] = {}  # time_steps' copy, compiled once

            def compiled_loss(model: torch.nn.Module, images: object, labels: object
                              ) -> torch.Tensor:
                network = compiled.setdefault(id(model), torch.compile(model))
                return loss(network, images, labels)

            seconds = time_steps(model, chosen, batch, compiled_loss, timed=args.timed)
            ratio = times[PLAIN] / seconds
            table.add_row(name, chosen.label() + " compiled", f"{seconds * 1000:.0f}",
                          f"{ratio:.2f}x", "")
            records.append({"model": name, "setting": chosen.label() + " compiled",
                            "ms_per_step": round(seconds * 1000, 1),
                            "speedup": round(ratio, 3), "chosen": False})
        console.print(f"[dim]{name}: chose {chosen.label()}, "
                      f"{times[PLAIN] / times[chosen]:.2f}x the plain setting[/]")
    console.print(table)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
