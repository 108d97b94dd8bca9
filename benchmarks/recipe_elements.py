"""The regularisation recipe, one element at a time: top-1 without and with each of
``--auto-augment``, ``--mixup``, ``--cutmix``, ``--random-erase`` and ``--drop-path``, at equal
epochs, on data where the defaults stay below 95%.

The data: a few dozen digits per class as RGB JPEGs (``train/``, the first ``--per-class``
(30) of each class of the digits' training split) validated on all 355 digits of the
validation split (``val/``), written once to ``--root``, trained at ``--size`` (32) px.
Everything else is the image-folder defaults (AdamW, 30 epochs, batch 64, label smoothing
0.1). Each run prints its final and best validation
top-1; the table at the end compares each element with the baseline of the same model and
seed::

    python benchmarks/recipe_elements.py                                  # both models, seed 0
    python benchmarks/recipe_elements.py --models mobilenet_v2 --seeds 0 1 --only baseline mixup
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.table import Table

from lightnets.data.digits import write_digits_folder
from lightnets.registry import meta_model
from lightnets.train import TrainConfig, train

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

# each element at the setting its authors (or torchvision's reference recipes) use
ELEMENTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "autoaugment": {"auto_augment": "autoaugment"},
    "trivialaugment": {"auto_augment": "trivialaugment"},
    "mixup": {"mixup": 0.2},
    "cutmix": {"cutmix": 1.0},
    "random_erase": {"random_erase": 0.25},
    "drop_path": {"drop_path_rate": 0.1},
}


def write_data(root: Path, per_class: int, size: int) -> Path:
    """``root/train`` (``per_class`` digits a class) and ``root/val`` (every validation
    digit), unless written already."""
    if not (root / "val").is_dir():
        write_digits_folder(root / "train", per_class, size)
        write_digits_folder(root / "val", 10_000, size, split="val")
    return root


def takes_drop_path(model: str) -> bool:
    """Whether ``model`` has residual branches to drop (ShuffleNetV2 has none: it
    concatenates)."""
    try:
        meta_model(model, num_classes=2, drop_path_rate=0.1)
    except (ValueError, TypeError):
        return False
    return True


def run(model: str, data: Path, element: str, seed: int, epochs: int | None, size: int,
        runs_dir: Path) -> dict[str, Any]:
    """One training run; its final and best validation top-1 and its seconds."""
    config = TrainConfig(model=model, data=str(data), input_size=size, epochs=epochs, seed=seed,
                         workers=0, progress=False, runs_dir=str(runs_dir),
                         name=f"{model}-{element}-{seed}", **ELEMENTS[element])
    start = time.perf_counter()
    result = train(config, overwrite=True)
    return {"model": model, "element": element, "seed": seed, "epochs": len(result.history),
            "top1": result.history[-1]["val_top1"], "best_top1": result.best_score,
            "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mobilenet_v2", "shufflenet_v2_x1_0"])
    parser.add_argument("--only", nargs="+", choices=list(ELEMENTS), default=list(ELEMENTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: the folder's (30)")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--root", type=Path, default=None,
                        help="where the data is written (default: a temporary folder)")
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    with tempfile.TemporaryDirectory() as scratch:
        data = write_data(args.root or Path(scratch) / "digits", args.per_class, args.size)
        records = []
        for model in args.models:
            for seed in args.seeds:
                for element in args.only:
                    if element == "drop_path" and not takes_drop_path(model):
                        continue
                    records.append(run(model, data, element, seed, args.epochs, args.size,
                                       Path(scratch) / "runs"))
                    console.print(records[-1], highlight=False, soft_wrap=True)
    console.print(table(records))
    write_json(args.json, records)


def table(records: list[dict[str, Any]]) -> Table:
    """Each element's mean final top-1 over the seeds beside its model's baseline."""
    shown = Table("element", "model", "epochs", "seeds", "top-1 without", "top-1 with",
                  "change", "seconds")
    for model in dict.fromkeys(r["model"] for r in records):
        def mean(element: str, key: str = "top1") -> float | None:
            values = [r[key] for r in records if r["model"] == model and r["element"] == element]
            return statistics.mean(values) if values else None
        base = mean("baseline")
        for element in ELEMENTS:
            with_it = mean(element)
            if with_it is None:
                continue
            seeds = sum(r["model"] == model and r["element"] == element for r in records)
            epochs = next(r["epochs"] for r in records if r["model"] == model)
            shown.add_row(element, model, str(epochs), str(seeds),
                          "-" if base is None else f"{base:.2%}", f"{with_it:.2%}",
                          "-" if base is None else f"{(with_it - base) * 100:+.1f}",
                          f"{mean(element, 'seconds'):.0f}")
    return shown


if __name__ == "__main__":
    main()
