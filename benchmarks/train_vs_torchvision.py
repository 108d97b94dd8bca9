"""`lightnets train` against a plain torchvision training loop, epoch for epoch, in one process.

The data is an RGB image folder (``--data``, or by default one this script writes: 60 digits of
each class as 256x256 JPEGs, split 480 / 120 by lightnets' seeded per-class split; the plain
loop trains and validates on exactly the same files). For every model, lightnets' trainer
(:func:`lightnets.train.train_epochs`: its defaults for a folder at 224 px, nothing tuned here
but ``--epochs`` and ``--batch-size``) and the plain loop take turns one epoch at a time, so a
change of load on a shared machine hits both alike. Each reports its training images/s (data
loading included, validation not) and its validation top-1 after every epoch; the speed-up is
the median over epochs of lightnets' images/s over the plain loop's in the same turn.

The plain loop is what a PyTorch user writes first: torchvision's model (random weights),
``ImageFolder`` with ``transforms.RandomResizedCrop(224)``, a flip, ``ToTensor``, ``Normalize``;
a ``DataLoader`` with 2 workers (as PyTorch's "Training a classifier" tutorial); fp32, NCHW;
``SGD(momentum=0.9, weight_decay=1e-4)`` at torchvision's reference learning rate of 0.1 for
batch 256 scaled to the batch (0.0125 at 32), constant; plain cross-entropy; validation by
``Resize(256)``, ``CenterCrop(224)``. Each loop keeps its own random-number stream, so
lightnets' run draws what a lone ``lightnets train`` would::

    python benchmarks/train_vs_torchvision.py                     # 3 models, 5 epochs each
    python benchmarks/train_vs_torchvision.py --models mobilenet_v2 --epochs 3 --data FOLDER
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Subset
from torchvision import transforms
from torchvision.datasets import ImageFolder

from lightnets.data.digits import write_digits_folder
from lightnets.data.folder import seeded_split
from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD
from lightnets.registry import peers_of
from lightnets.train import TrainConfig, train_epochs

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

# the issue's targets: lightnets' images/s over the plain loop's at 224 px, batch 32, 2 cores
TARGETS = {"mobilenet_v2": 3.0, "resnet18": 2.0}


def plain_datasets(root: Path, val_fraction: float, seed: int
                   ) -> tuple[ImageFolder | Subset, ImageFolder | Subset, list[str]]:
    """The plain loop's datasets on lightnets' split of ``root`` (or its train/ and val/), and
    the class names."""
    normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = transforms.Compose([transforms.RandomResizedCrop(224),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                   normalize])
    val_tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                                 transforms.ToTensor(), normalize])
    if (root / "train").is_dir() and (root / "val").is_dir():
        train = ImageFolder(root / "train", train_tf)
        return train, ImageFolder(root / "val", val_tf), train.classes
    tree = ImageFolder(root, train_tf)
    train_indices, val_indices = seeded_split(tree.targets, val_fraction, seed)
    return (Subset(tree, train_indices), Subset(ImageFolder(root, val_tf), val_indices),
            tree.classes)


def plain_epochs(name: str, root: Path, epochs: int, batch_size: int, seed: int = 0
                 ) -> Iterator[dict[str, float]]:
    """torchvision's ``name`` trained by the plain loop; yields each epoch's figures."""
    torch.manual_seed(seed)
    train_set, val_set, classes = plain_datasets(root, 0.2, seed)
    peer = peers_of(name)["torchvision"]
    model = torchvision.models.get_model(peer.name, weights=None, num_classes=len(classes),
                                         **peer.kwargs)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, num_workers=2)
    val_loader = DataLoader(val_set, batch_size, num_workers=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1 * batch_size / 256, momentum=0.9,
                                weight_decay=1e-4)
    for epoch in range(epochs):
        model.train()
        start, seen = time.perf_counter(), 0
        for images, labels in train_loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            seen += len(labels)
        train_seconds = time.perf_counter() - start
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in val_loader:
                correct += int((model(images).argmax(1) == labels).sum())
        yield {"epoch": epoch + 1, "images_per_second": seen / train_seconds,
               "epoch_seconds": time.perf_counter() - start, "val_top1": correct / len(val_set)}


class OwnRandomStream:
    """A context that swaps in its own torch random state and keeps it between uses, so two
    interleaved loops draw as if each ran alone."""

    def __init__(self) -> None:
        self.state = torch.get_rng_state()

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        outside = torch.get_rng_state()
        torch.set_rng_state(self.state)
        try:
            yield
        finally:
            self.state = torch.get_rng_state()
            torch.set_rng_state(outside)


def compare(name: str, root: Path, args: argparse.Namespace, runs_dir: Path,
            console: Console) -> dict:
    """Both loops on ``name``, one epoch each in turn; per-epoch figures and the summary."""
    config = TrainConfig(model=name, data=str(root), epochs=args.epochs,
                         batch_size=args.batch_size, progress=False, runs_dir=str(runs_dir),
                         name=name)
    ours = train_epochs(config, overwrite=True)
    theirs = plain_epochs(name, root, args.epochs, args.batch_size, args.seed)
    plain_stream = OwnRandomStream()  # seeded by plain_epochs on its first turn
    rows = []
    for epoch in range(args.epochs):
        mine = next(ours)
        with plain_stream.active():
            peer = next(theirs)
        rows.append({"epoch": epoch + 1, "lightnets": mine["images_per_second"],
                     "torchvision": peer["images_per_second"],
                     "ratio": mine["images_per_second"] / peer["images_per_second"],
                     "lightnets_top1": mine["val_top1"], "torchvision_top1": peer["val_top1"],
                     "lightnets_epoch_s": mine["epoch_seconds"],
                     "torchvision_epoch_s": peer["epoch_seconds"],
                     "load": os.getloadavg()[0]})
        console.print(f"[dim]{name} epoch {epoch + 1}/{args.epochs}: lightnets "
                      f"{rows[-1]['lightnets']:.1f} img/s, torchvision "
                      f"{rows[-1]['torchvision']:.1f} img/s ({rows[-1]['ratio']:.2f}x); top-1 "
                      f"{mine['val_top1']:.1%} / {peer['val_top1']:.1%}[/]", highlight=False)
    for loop in (ours, theirs):  # finish both: lightnets writes its result and frees its runtime
        for _ in loop:
            pass
    return {"model": name, "epochs": rows,
            "lightnets_images_per_s": statistics.median(r["lightnets"] for r in rows),
            "torchvision_images_per_s": statistics.median(r["torchvision"] for r in rows),
            "speedup": statistics.median(r["ratio"] for r in rows),
            "lightnets_top1": rows[-1]["lightnets_top1"],
            "torchvision_top1": rows[-1]["torchvision_top1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["mobilenet_v2", "resnet18", "shufflenet_v2_x1_0"])
    parser.add_argument("--data", type=Path, default=None,
                        help="an RGB class-folder tree (default: the digits as 256 px JPEGs)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser, json=True)  # --threads: both loops
    args = parser.parse_args()
    console = begin(args)
    with tempfile.TemporaryDirectory(prefix="train_vs_torchvision-") as scratch:
        root = args.data or write_digits_folder(Path(scratch) / "digits-256")
        load_before = os.getloadavg()
        console.print(f"data {root}; load average {load_before[0]:.2f} / {load_before[1]:.2f} "
                      "(1 / 5 min)", highlight=False)
        results = [compare(name, Path(root), args, Path(scratch) / "runs", console)
                   for name in args.models]
    load_after = os.getloadavg()
    table = Table(title=f"training at 224x224, batch {args.batch_size}, {args.epochs} epochs "
                  f"each, {torch.get_num_threads()} threads; medians over epochs")
    for column in ("model", "lightnets img/s", "torchvision img/s", "speed-up", "target",
                   f"top-1 after {args.epochs} (lightnets / torchvision)"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in results:
        target = TARGETS.get(r["model"])
        met = "[green]met[/]" if target is not None and r["speedup"] >= target else "[red]missed[/]"
        verdict = "" if target is None else f"{target:.0f}x {met}"
        table.add_row(r["model"], f"{r['lightnets_images_per_s']:.1f}",
                      f"{r['torchvision_images_per_s']:.1f}", f"{r['speedup']:.2f}x", verdict,
                      f"{r['lightnets_top1']:.1%} / {r['torchvision_top1']:.1%}")
    console.print(table)
    console.print(f"load average at the end {load_after[0]:.2f} / {load_after[1]:.2f} "
                  f"(1 / 5 min) on {os.cpu_count()} CPUs", highlight=False)
    write_json(args.json, results, load_before=load_before, load_after=load_after)


if __name__ == "__main__":
    main()
