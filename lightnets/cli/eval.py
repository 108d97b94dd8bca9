"""``lightnets eval --checkpoint CKPT [--data DATA]``: top-1, top-5, loss, per-class accuracy
and a confusion-matrix PNG, with the preprocessing stored in the checkpoint;
``--model NAME --weights PATH --data DATA`` evaluates torchvision or timm weights with theirs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightnets.cli._common import add_weights_arguments, console, warnings_as_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: top-1/top-5, loss, per-class accuracy",
        description="Evaluate a trained checkpoint on the validation split of its data (or of "
        "--data) and save a confusion-matrix PNG.")
    add_weights_arguments(parser)
    parser.add_argument("--data", help="digits, an image folder or a CIFAR folder (default: "
                        "the data the checkpoint was trained on)")
    parser.add_argument("--split", choices=("val", "train"), default="val")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--workers", type=int, help="data-loading processes")
    parser.add_argument("--limit-batches", type=int, help="evaluate only this many batches")
    parser.add_argument("--confusion", metavar="PNG", help="where to save the confusion matrix "
                        "(default: confusion-<split>.png beside the checkpoint; for --weights, "
                        "in the current folder)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object (top1, top5 as fractions; loss; per_class)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from lightnets.checkpoint import checkpoint_path
    from lightnets.train import evaluate, save_confusion_png

    path = (checkpoint_path(args.checkpoint, prefer="best") if args.checkpoint
            else Path(args.weights).expanduser())
    with warnings_as_lines():
        result = evaluate(path, data=args.data, split=args.split, batch_size=args.batch_size,
                          device=args.device, workers=args.workers,
                          limit_batches=args.limit_batches, model=args.model, source=args.source)
    folder = path.parent if args.checkpoint else Path()  # weights may sit in a read-only cache
    png = Path(args.confusion) if args.confusion else folder / f"confusion-{args.split}.png"
    save_confusion_png(result, png, title=f"{path.name}: top-1 {result.top1:.2%} on "
                       f"{result.count} {args.split} images")
    if args.json:
        print(json.dumps({"top1": result.top1, "top5": result.top5, "loss": result.loss,
                          "count": result.count,
                          "per_class": dict(zip(result.classes, result.per_class)),
                          "confusion_png": str(png), "checkpoint": str(path)}))
        return 0
    if len(result.classes) <= 100:
        table = Table(title="per-class accuracy")
        for column in ("class", "images", "accuracy"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, accuracy, row in zip(result.classes, result.per_class, result.confusion):
            table.add_row(name, str(sum(row)), f"{accuracy:.2%}")
        console.print(table)
    console.print(f"{path}: top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  loss "
                  f"{result.loss:.4f}  on {result.count} {args.split} images; confusion "
                  f"matrix: {png}", highlight=False, soft_wrap=True)
    return 0
