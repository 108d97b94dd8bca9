"""Segmenters at equal training time, each with ``lightnets train``'s defaults for the data.

The fastest model sets the time: every model is first timed on a probe of ``--probe-steps``
training steps (all probes one after the other), then the fastest trains its full epochs and
every other model the same epochs, on the same schedule, with its steps per epoch cut by its
speed ratio, so that each spends about the same seconds in training steps. ``--loss`` runs each
model once per loss. The table gives params and MACs at the input size, steps per epoch, the
seconds each run really spent in training steps and in all (with validation and checkpoints),
and the final and best validation mIoU (the final model's IoU per class is printed and in
``--json``)::

    python benchmarks/seg_equal_time.py lraspp_mobilenet_v3_large unet_mobilenet_v2
    python benchmarks/seg_equal_time.py unet_mobilenet_v2 pspnet_mobilenet_v2 \\
        deeplabv3plus_mobilenet_v2 lraspp_mobilenet_v2 --data mnfinder-pairs \\
        --input-size 128 --batch-size 16 --epochs 4 --loss ce ce+dice

The data is ``digits-seg`` (4000 training canvases) or a pair folder with a ``train`` split
(``benchmarks/mnfinder_pairs.py`` writes one from a real microscopy set).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from lightnets.profile.counter import count_complexity
from lightnets.registry import meta_model
from lightnets.train import TrainConfig, train
from lightnets.train.config import DATA_DEFAULTS
from lightnets.train.evaluate import evaluate

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

DIGITS_SEG = (4000, 11)  # digits-seg's training canvases and classes


def training_images_and_classes(data: str) -> tuple[int, int]:
    if data == "digits-seg":
        return DIGITS_SEG
    folder = Path(data) / "train" / "images"
    classes = Path(data) / "classes.txt"
    if not folder.is_dir() or not classes.is_file():
        raise SystemExit(f"{data}: expected 'digits-seg' or a pair folder with train/images/ "
                         "and classes.txt")
    return sum(1 for _ in folder.iterdir()), len(classes.read_text().split())


def config(args: argparse.Namespace, model: str, folder: Path, **overrides: Any
           ) -> TrainConfig:
    settings = {"input_size": args.input_size, "batch_size": args.batch_size,
                "epochs": args.epochs, **overrides}
    return TrainConfig(model=model, data=args.data, progress=False, runs_dir=str(folder),
                       name=model, seed=args.seed,
                       **{key: value for key, value in settings.items() if value is not None})


def images_per_second(args: argparse.Namespace, model: str, folder: Path) -> float:
    """Training images per second of ``model`` over a probe of ``--probe-steps`` steps."""
    result = train(config(args, model, folder / "probe", epochs=1,
                          limit_train_batches=args.probe_steps, limit_val_batches=1),
                   overwrite=True)
    return result.history[0]["images_per_second"]


def run(args: argparse.Namespace, model: str, loss: str, steps: int, full_steps: int,
        batch: int, folder: Path) -> dict[str, Any]:
    result = train(config(args, model, folder, loss=loss,
                          limit_train_batches=None if steps == full_steps else steps),
                   overwrite=True)
    history = result.history
    mious = [row["val_miou"] for row in history]
    final = evaluate(result.last_checkpoint, device="cpu")
    return {"model": model, "loss": loss, "steps_per_epoch": steps, "epochs": len(history),
            "final_class_iou": dict(zip(final.classes, final.per_class_iou)),
            "step_seconds": sum(steps * batch / row["images_per_second"] for row in history),
            "run_seconds": result.train_seconds, "final_miou": mious[-1],
            "best_miou": max(mious), "median_images_per_second": statistics.median(
                row["images_per_second"] for row in history)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--data", default="digits-seg")
    parser.add_argument("--input-size", type=int, default=None, help="default: the data's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the data's")
    parser.add_argument("--epochs", type=int, default=None, help="default: the data's")
    parser.add_argument("--loss", nargs="+", default=["ce"])
    parser.add_argument("--probe-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    defaults = DATA_DEFAULTS["digits-seg" if args.data == "digits-seg" else "seg-folder"]
    batch = args.batch_size or defaults["batch_size"]
    size = args.input_size or defaults["input_size"]
    images, classes = training_images_and_classes(args.data)
    full_steps = images // batch
    records = []
    with tempfile.TemporaryDirectory(prefix="seg-equal-time-") as folder:
        speed = {name: images_per_second(args, name, Path(folder)) for name in args.models}
        fastest = max(speed.values())
        for name in args.models:
            steps = max(1, round(full_steps * speed[name] / fastest))
            counts = count_complexity(meta_model(name, num_classes=classes), (3, size, size))
            for loss in args.loss:
                record = run(args, name, loss, steps, full_steps, batch, Path(folder))
                records.append({**record, "params": counts.params, "macs": counts.macs,
                                "probe_images_per_second": speed[name]})
                ious = ", ".join(f"{label} {iou:.2%}" for label, iou in
                                 record["final_class_iou"].items() if iou is not None)
                console.print(f"{name} ({loss}): {steps} steps per epoch, "
                              f"{record['step_seconds']:.0f} s of steps, final mIoU "
                              f"{record['final_miou']:.2%} ({ious})", highlight=False)
    console.print(f"\n| model | loss | params | MACs at {size} | steps per epoch | training "
                  "steps (s) | whole run (s) | final mIoU | best mIoU |\n"
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in records:
        console.print(f"| `{r['model']}` | {r['loss']} | {r['params'] / 1e6:.2f}M | "
                      f"{r['macs'] / 1e6:.0f}M | {r['steps_per_epoch']} | "
                      f"{r['step_seconds']:.0f} | {r['run_seconds']:.0f} | "
                      f"{r['final_miou']:.2%} | {r['best_miou']:.2%} |", highlight=False)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
