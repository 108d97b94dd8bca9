"""Pruned against unpruned, at a deployment input size, in one process: the speed-up that
structured pruning gives on every runtime (fp32), and with int8 on top.

    python benchmarks/prune_speed.py runs/mobilenet_v2-digits/last.pruned.pt \\
        runs/resnet18-digits/last.pruned.pt --size 224 --batch-size 1 32 --int8

Each pruned checkpoint is timed beside the unpruned checkpoint it came from (its
``pruning.source``), both fused, in eager PyTorch (channels-last), ONNX Runtime and, where
installed, OpenVINO; with ``--int8`` also both models statically quantized to int8 (QDQ, ONNX
Runtime's quantizer, calibrated on 64 real digit scans resized to the size) in ONNX Runtime. All
rows of one model and batch size run in alternating blocks (lightnets.export.timing), medians
of ``--repeats``; ratios are against the unpruned model in ONNX Runtime fp32.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from lightnets.checkpoint import load_checkpoint
from lightnets.export.backends import available_backends, create_backend
from lightnets.export.fuse import fuse
from lightnets.export.onnx import export_onnx, onnx_session, run_session
from lightnets.export.quantize import quantize_onnx
from lightnets.export.timing import time_callables
from lightnets.export.verify import real_images
from lightnets.profile import count_complexity

from _common import add_common_arguments, begin  # benchmarks/_common.py

REFERENCE = "unpruned onnxruntime fp32"


def runners(models: dict[str, torch.nn.Module], size: tuple[int, int, int], preprocess: dict,
            int8: bool, folder: str) -> dict[str, object]:
    rows = {}
    for backend in ("onnxruntime", "eager", "openvino"):
        if available_backends()[backend] is None:
            for which, model in models.items():
                rows[f"{which} {backend} fp32"] = create_backend(model, backend, size)
    if int8:
        calibration = real_images(size, preprocess, count=64)
        for which, model in models.items():
            fp32 = export_onnx(fuse(model), Path(folder) / f"{which}.onnx", size)
            session = onnx_session(quantize_onnx(fp32, Path(folder) / f"{which}.int8.onnx",
                                                 calibration))
            rows[f"{which} onnxruntime int8"] = lambda x, s=session: run_session(s, x)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="pruned checkpoints")
    parser.add_argument("--size", type=int, default=224, help="square input side (224)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--int8", action="store_true", help="also both models in int8")
    add_common_arguments(parser, repeats=20)
    args = parser.parse_args()
    console = begin(args)

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    say(f"{torch.get_num_threads()} threads, input {args.size}x{args.size}, median of "
        f"{args.repeats}; speed-up against the {REFERENCE}")
    for path in args.checkpoints:
        pruned = load_checkpoint(path)
        if not pruned.pruning:
            raise SystemExit(f"{path} is not a pruned checkpoint")
        original = load_checkpoint(pruned.pruning["source"])
        models = {"unpruned": original.build_model().eval(),
                  "pruned": pruned.build_model().eval()}
        size = (models["pruned"].in_chans, args.size, args.size)
        macs = {which: count_complexity(model, size).macs for which, model in models.items()}
        say(f"\n{pruned.model_name} ({path}): MACs {macs['unpruned'] / 1e6:.1f}M -> "
            f"{macs['pruned'] / 1e6:.1f}M ({macs['pruned'] / macs['unpruned']:.1%})")
        with tempfile.TemporaryDirectory() as folder:
            rows = runners(models, size, pruned.preprocess, args.int8, folder)
            for batch in args.batch_size:
                times = time_callables(rows, torch.randn(batch, *size), warmup=3,
                                       repeats=args.repeats)
                medians = {row: statistics.median(values) for row, values in times.items()}
                reference = medians[REFERENCE]
                say(f"  batch {batch}:")
                for row, median in medians.items():
                    say(f"    {row:28s} {median:9.2f} ms  {reference / median:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
