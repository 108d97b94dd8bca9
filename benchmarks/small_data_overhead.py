"""``lightnets train`` on tiny data against a plain PyTorch loop on the same data and model.

Issue 30's case: a segmenter (LR-ASPP MobileNetV3-Small) on 12 training and 4 validation
image/mask pairs (digits-seg canvases written as a pair folder), 64x64, batch 4 (3 steps an
epoch), for 60 epochs. lightnets runs its whole loop (``lightnets.train.train``: precise BN,
validation, checkpoints, curves). The plain loop is what a short script does with the same
datasets, model and DataLoader processes: AdamW, cross-entropy, and each epoch one pass over the
training split to recompute the BatchNorm statistics, then the validation mIoU. Wall seconds
of each (median of ``--repeats`` runs, alternating), and lightnets' seconds in its epochs and in
their training steps::

    python benchmarks/small_data_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from lightnets.data import IGNORE_INDEX, build_data, default_preprocess
from lightnets.data.digits_seg import write_pair_folder
from lightnets.registry import create_model
from lightnets.train import TrainConfig, train
from lightnets.train.precise_bn import recompute_batchnorm_stats

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

MODEL, SIZE, BATCH = "lraspp_mobilenet_v3_small", 64, 4


def lightnets_run(data: Path, runs: Path, epochs: int, workers: int
                  ) -> tuple[float, float, float]:
    """Wall seconds of ``lightnets.train.train``, of its epochs (steps, precise BN, validation,
    checkpoints and curves; not the set-up) and of its training steps."""
    started = time.perf_counter()
    result = train(TrainConfig(model=MODEL, data=str(data), input_size=SIZE, batch_size=BATCH,
                               epochs=epochs, workers=workers, progress=False,
                               runs_dir=str(runs), name="small"), overwrite=True)
    wall = time.perf_counter() - started
    steps = sum(12 / row["images_per_second"] for row in result.history)
    return wall, result.train_seconds, steps


@torch.no_grad()
def miou(model: torch.nn.Module, loader: DataLoader, classes: int) -> float:
    model.eval()
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    for images, masks in loader:
        predicted = model(images).argmax(1)
        kept = masks != IGNORE_INDEX
        confusion += torch.bincount(masks[kept].long() * classes + predicted[kept],
                                    minlength=classes ** 2).view(classes, classes)
    union = confusion.sum(0) + confusion.sum(1) - confusion.diag()
    present = union > 0
    return float((confusion.diag()[present] / union[present]).mean())


def plain_run(data: Path, epochs: int, workers: int) -> float:
    """Wall seconds of the plain loop, data set-up included."""
    started = time.perf_counter()
    bundle = build_data(str(data), default_preprocess("seg-folder", SIZE, 3), kind="seg-folder")
    model = create_model(MODEL, num_classes=bundle.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    train_loader = DataLoader(bundle.train, BATCH, shuffle=True, num_workers=workers,
                              persistent_workers=workers > 0)
    val_loader = DataLoader(bundle.val, BATCH, num_workers=workers,
                            persistent_workers=workers > 0)
    for _ in range(epochs):
        model.train()
        for images, masks in train_loader:
            loss = F.cross_entropy(model(images), masks.long(), ignore_index=IGNORE_INDEX)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        recompute_batchnorm_stats(model, (images for images, _ in train_loader))
        miou(model, val_loader, bundle.num_classes)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader processes")
    add_common_arguments(parser, repeats=3, json=True)
    args = parser.parse_args()
    console = begin(args)
    runs: dict[str, list[float]] = {"lightnets": [], "plain": [], "lightnets epochs": [],
                                    "lightnets steps": []}
    with tempfile.TemporaryDirectory(prefix="small-data-") as folder:
        data = write_pair_folder(Path(folder) / "pairs", 12, 4)
        for _ in range(args.repeats):
            wall, epochs, steps = lightnets_run(data, Path(folder) / "runs", args.epochs,
                                                args.workers)
            runs["lightnets"].append(wall)
            runs["lightnets epochs"].append(epochs)
            runs["lightnets steps"].append(steps)
            runs["plain"].append(plain_run(data, args.epochs, args.workers))
    medians = {name: statistics.median(values) for name, values in runs.items()}
    console.print(f"{MODEL}, 12 pairs, {SIZE}x{SIZE}, batch {BATCH}, {args.epochs} epochs, "
                  f"{args.workers} loader process(es); median of {args.repeats}:\n"
                  f"  plain loop      {medians['plain']:.1f} s\n"
                  f"  lightnets train {medians['lightnets']:.1f} s "
                  f"({medians['lightnets'] / medians['plain']:.2f}x the plain loop): "
                  f"{medians['lightnets epochs']:.1f} s in its epochs, of which "
                  f"{medians['lightnets steps']:.1f} s in training steps", highlight=False)
    write_json(args.json, {"runs": runs, "medians": medians})


if __name__ == "__main__":
    main()
