"""Segmenters at equal training time on ``digits-seg``, each with ``lightnets train``'s defaults.

The first model is the reference: it trains with digits-seg's defaults (9 epochs of 125 steps,
AdamW, batch 32 at 64x64). Every other model trains the same 9 epochs on the same schedule, with
as many steps per epoch as fit in the reference's time: each model's training speed is measured
first on a probe of ``--probe-steps`` steps, all probes one after the other, and the steps per
epoch scaled by the ratio. The table gives params and MACs at 64, steps per epoch, the seconds
each run really spent in training steps and in all (with validation and checkpoints), and the
final and best validation mIoU over the 500 validation canvases::

    python benchmarks/seg_equal_time.py lraspp_mobilenet_v3_large unet_mobilenet_v2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from lightnets.profile.counter import count_complexity
from lightnets.registry import meta_model
from lightnets.train import TrainConfig, train
from lightnets.train.config import DATA_DEFAULTS

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

DATA = "digits-seg"
TRAIN_IMAGES = 4000  # digits-seg's training canvases


def config(model: str, folder: Path, seed: int, **overrides) -> TrainConfig:
    return TrainConfig(model=model, data=DATA, progress=False, runs_dir=str(folder),
                       name=model, seed=seed, **overrides)


def images_per_second(model: str, folder: Path, steps: int, seed: int) -> float:
    """Training images per second of ``model`` over a probe of ``steps`` steps (one epoch)."""
    result = train(config(model, folder / "probe", seed, epochs=1, limit_train_batches=steps,
                          limit_val_batches=1), overwrite=True)
    return result.history[0]["images_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="the reference first")
    parser.add_argument("--probe-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    add_common_arguments(parser, json=True)
    args = parser.parse_args()
    console = begin(args)
    defaults = DATA_DEFAULTS[DATA]
    full_steps = TRAIN_IMAGES // defaults["batch_size"]
    size = defaults["input_size"]
    records = []
    with tempfile.TemporaryDirectory(prefix="seg-equal-time-") as folder:
        speed = {name: images_per_second(name, Path(folder), args.probe_steps, args.seed)
                 for name in args.models}
        reference = args.models[0]
        for name in args.models:
            steps = min(full_steps, max(1, round(full_steps * speed[name] / speed[reference])))
            result = train(config(name, Path(folder), args.seed,
                                  limit_train_batches=None if steps == full_steps else steps),
                           overwrite=True)
            mious = [row["val_miou"] for row in result.history]
            stepping = sum(steps * defaults["batch_size"] / row["images_per_second"]
                           for row in result.history)
            counts = count_complexity(meta_model(name, num_classes=11), (3, size, size))
            records.append({"model": name, "params": counts.params, "macs": counts.macs,
                            "probe_images_per_second": speed[name], "steps_per_epoch": steps,
                            "epochs": len(mious), "step_seconds": stepping,
                            "run_seconds": result.train_seconds,
                            "final_miou": mious[-1], "best_miou": max(mious),
                            "median_images_per_second": statistics.median(
                                row["images_per_second"] for row in result.history)})
            console.print(f"{name}: {steps} steps per epoch, {stepping:.0f} s of steps, final "
                          f"mIoU {mious[-1]:.2%}", highlight=False)
    console.print(f"\n| model | params | MACs at {size} | steps per epoch | training (s) "
                  "| final mIoU | best mIoU |\n|---|---:|---:|---:|---:|---:|---:|")
    for r in records:
        console.print(f"| `{r['model']}` | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.0f}M | "
                      f"{r['steps_per_epoch']} | {r['step_seconds']:.0f} | "
                      f"{r['run_seconds']:.0f} | {r['final_miou']:.2%} | {r['best_miou']:.2%} |",
                      highlight=False)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
