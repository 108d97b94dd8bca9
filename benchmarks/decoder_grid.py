"""Every segmentation decoder on every common backbone: params and MACs at 512, latency at 512,
and digits-seg mIoU after a short training, as decoder x backbone tables.

Each cell is ``create_model(head, backbone=...)`` (``unet (separable)`` and ``fpn (separable)``
with ``separable=True``), 21 classes for the counts and the latency, digits-seg's 11 for the
training. ``--measure`` picks the tables:

* ``counts``: params / MACs at ``--input-size`` on the meta device.
* ``latency``: median milliseconds of batch 1 at ``--input-size`` behind lightnets' ``eager``
  and ``onnxruntime`` backends (``create_backend``: fused, in each one's measured default
  memory format, as ``lightnets bench --backend`` times them), each timed
  in blocks of ``--repeats`` calls after ``--warmup`` (``lightnets.export.timing``). Run it on
  a quiet machine.
* ``miou``: the final validation mIoU of ``lightnets train``'s digits-seg defaults (9 epochs;
  ``--epochs`` shortens the schedule; seed ``--seed``). Time does not enter, so it may share
  the machine; a cell takes about 4 to 5 minutes on 2 cores with a light backbone::

    python benchmarks/decoder_grid.py --measure counts latency --threads 2
    python benchmarks/decoder_grid.py --measure miou --backbones mobilenet_v2_x1_0
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

import torch

from lightnets.export.backends import create_backend
from lightnets.export.timing import time_callables
from lightnets.profile.counter import count_complexity
from lightnets.registry import create_model, meta_model
from lightnets.train import TrainConfig, train
from lightnets.train.config import DATA_DEFAULTS

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

BACKBONES = ["mobilenet_v2_x1_0", "mobilenet_v3_large", "shufflenet_v2_x1_0", "ghostnet_x1_0",
             "resnet18", "resnet34", "resnet50", "vgg16_bn"]
ROWS = {"unet": ("unet", {}), "unet (separable)": ("unet", {"separable": True}),
        "pspnet": ("pspnet", {}), "fpn": ("fpn", {}),
        "fpn (separable)": ("fpn", {"separable": True}), "lraspp": ("lraspp", {}),
        "deeplabv3plus": ("deeplabv3plus", {})}
CLASSES = 21  # Pascal VOC's, every segmenter's default


def counts(row: str, backbone: str, size: int) -> dict[str, Any]:
    head, options = ROWS[row]
    result = count_complexity(meta_model(head, backbone=backbone, **options), (3, size, size))
    return {"params": result.params, "macs": result.macs}


def latency(row: str, backbone: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """Median ms of eager PyTorch and ONNX Runtime at batch 1."""
    head, options = ROWS[row]
    torch.manual_seed(0)
    model = create_model(head, backbone=backbone, num_classes=CLASSES, **options).eval()
    runs = {backend: create_backend(model, backend, (3, size, size), threads=args.threads)
            for backend in ("eager", "onnxruntime")}
    times = time_callables(runs, torch.randn(1, 3, size, size), warmup=args.warmup,
                           repeats=args.repeats)
    return {f"{name}_ms": statistics.median(values) for name, values in times.items()}


def miou(row: str, backbone: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Final validation mIoU of a short digits-seg training."""
    head, options = ROWS[row]
    config = TrainConfig(model=head, model_args={"backbone": backbone, **options},
                         data="digits-seg", progress=False, runs_dir=str(folder),
                         name=f"{row.replace(' (separable)', '-separable')}-{backbone}",
                         seed=args.seed,
                         **({"epochs": args.epochs} if args.epochs else {}))
    result = train(config, overwrite=True)
    return {"miou": result.history[-1]["val_miou"], "train_seconds": result.train_seconds}


def table(records: list[dict[str, Any]], backbones: list[str], cell: Any) -> str:
    lines = [f"| decoder | {' | '.join(backbones)} |", "|---" * (len(backbones) + 1) + "|"]
    for row in ROWS:
        by_backbone = {r["backbone"]: r for r in records if r["row"] == row}
        if by_backbone:
            lines.append(f"| {row} | " + " | ".join(
                cell(by_backbone[b]) if b in by_backbone else "" for b in backbones) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", nargs="+", choices=("counts", "latency", "miou"),
                        default=["counts"])
    parser.add_argument("--backbones", nargs="+", default=BACKBONES)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--input-size", type=int, default=512, help="counts and latency")
    parser.add_argument("--epochs", type=int, default=None,
                        help="miou (default: lightnets train's for digits-seg, 9)")
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser, warmup=2, repeats=6, json=True)
    args = parser.parse_args()
    console = begin(args)
    records = []
    with tempfile.TemporaryDirectory(prefix="decoder-grid-") as folder:
        for row in args.rows:
            for backbone in args.backbones:
                record: dict[str, Any] = {"row": row, "backbone": backbone}
                if "counts" in args.measure:
                    record.update(counts(row, backbone, args.input_size))
                if "latency" in args.measure:
                    record.update(latency(row, backbone, args.input_size, args))
                if "miou" in args.measure:
                    record.update(miou(row, backbone, args, Path(folder)))
                console.print(record, highlight=False)
                records.append(record)
    if "counts" in args.measure:
        console.print(f"\nparams / MACs at {args.input_size}:\n" + table(
            records, args.backbones,
            lambda r: f"{r['params'] / 1e6:.2f}M / {r['macs'] / 1e9:.1f}G"), highlight=False)
    if "latency" in args.measure:
        console.print(f"\nms at {args.input_size}, eager / ONNX Runtime:\n" + table(
            records, args.backbones,
            lambda r: f"{r['eager_ms']:.0f} / {r['onnxruntime_ms']:.0f}"), highlight=False)
    if "miou" in args.measure:
        epochs = args.epochs or DATA_DEFAULTS["digits-seg"]["epochs"]
        console.print(f"\ndigits-seg mIoU after {epochs} epochs:\n" + table(
            records, args.backbones, lambda r: f"{r['miou']:.1%}"), highlight=False)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
