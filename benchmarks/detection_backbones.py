"""Light backbones under the same detector on ``digits-det``: params, MACs, latency and mAP.

Each model is trained with ``lightnets train``'s defaults for digits-det (128x128, AdamW, fp32)
except the number of epochs (``--epochs``, the same for every model), and scored by its best
validation mAP (pycocotools). Latency is then measured for every trained model in one pass, in
alternating blocks (``lightnets.export.timing.time_callables``): eager PyTorch, the whole
detector (torchvision's resizing, head decoding and NMS included) on one 128x128 canvas, median
of ``--repeats`` calls. MACs are those of backbone, FPN and head at 128x128 (lightnets' counter on
``forward_raw``)::

    python benchmarks/detection_backbones.py --epochs 10
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

import torch

from lightnets.checkpoint import load_checkpoint
from lightnets.export.timing import time_callables
from lightnets.profile.counter import count_complexity
from lightnets.registry import meta_model
from lightnets.train import TrainConfig, train

from _common import add_common_arguments, begin  # benchmarks/_common.py

DEFAULT_MODELS = ["fcos_shufflenet_v2_x1_0", "fcos_mobilenet_v2", "fcos_squeezenet1_1",
                  "fcos_ghostnet_x1_0", "fcos_mobilenet_v3_large"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--epochs", type=int, default=10)
    add_common_arguments(parser, threads=False, repeats=20)
    args = parser.parse_args()
    console = begin(args)
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for name in args.models:
            console.print(f"training {name} for {args.epochs} epochs...", highlight=False)
            result = train(TrainConfig(model=name, data="digits-det", epochs=args.epochs,
                                       runs_dir=runs, progress=False))
            best = max(result.history, key=lambda row: row["val_map"])
            checkpoint = load_checkpoint(result.best_checkpoint)
            model = checkpoint.build_model().eval()
            shape_only = meta_model(name, **checkpoint.model_args)
            rows.append({"model": name, "map": best["val_map"], "map_50": best["val_map_50"],
                         "params": sum(p.numel() for p in model.parameters()),
                         "macs": count_complexity(shape_only, (3, 128, 128)).macs,
                         "train_s": result.train_seconds, "detector": model})
        image = [torch.rand(3, 128, 128)]
        with torch.inference_mode():
            times = time_callables({row["model"]: (lambda m: lambda _: m(image))(row["detector"])
                                    for row in rows}, torch.empty(0), 3, args.repeats)
    console.print("| model | params | MACs at 128 | latency, batch 1 (ms) | mAP@[.5:.95] | "
                  "mAP@.5 | training (s) |\n|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        console.print(f"| `{row['model']}` | {row['params'] / 1e6:.2f}M | {row['macs'] / 1e6:.0f}M"
                      f" | {statistics.median(times[row['model']]):.1f} | {row['map']:.3f} | "
                      f"{row['map_50']:.3f} | {row['train_s']:.0f} |", highlight=False)


if __name__ == "__main__":
    main()
