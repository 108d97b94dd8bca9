"""``lightnets eval --checkpoint CKPT [--data DATA]``: top-1, top-5, loss, per-class accuracy
and a confusion-matrix PNG (for a segmenter: mIoU, pixel accuracy, per-class IoU and a PNG of
validation images beside their ground truth and predicted masks), with the preprocessing stored in the checkpoint (or, for an exported
file, in its sidecar); ``--model NAME --weights PATH --data DATA`` evaluates torchvision or timm
weights with theirs. The numbers are printed whatever happens to the picture: an explicit
``--confusion`` path is checked before the evaluation starts, the default one beside the
checkpoint is left out with a warning when it cannot be written or drawn."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

from lightnets.cli._common import (CommandError, add_weights_arguments, console,
                                   warnings_as_lines)


EXAMPLES = 4  # validation images drawn beside their masks for a segmenter


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: top-1/top-5 or mIoU, loss, per-class figures",
        description="Evaluate a trained checkpoint on the validation split of its data (or of "
        "--data) and save a confusion-matrix PNG (segmenters: example predictions).")
    add_weights_arguments(parser)
    parser.add_argument("--data", help="digits, an image folder or a CIFAR folder; for "
                        "segmenters digits-seg, a VOC or a pair folder (default: the data the "
                        "checkpoint was trained on)")
    parser.add_argument("--split", choices=("val", "train"), default="val")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--workers", type=int, help="data-loading processes")
    parser.add_argument("--limit-batches", type=int, help="evaluate only this many batches")
    parser.add_argument("--confusion", metavar="PNG", help="where to save the confusion matrix, "
                        "or a segmenter's example predictions (default: confusion-<split>.png "
                        "or segmentation-<split>.png beside the checkpoint; for --weights, in "
                        "the current folder)")
    parser.add_argument("--save-predictions", metavar="JSON", help="detectors: write the "
                        "validation detections in COCO's results format (image_id, "
                        "category_id, bbox [x, y, w, h] in the original image's pixels, score)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object (top1, top5 as fractions; loss; per_class; "
                        "segmenters: miou, pixel_accuracy, per_class_iou, count)")
    parser.set_defaults(func=run, requires=requirements)


def requirements(args: argparse.Namespace) -> list[tuple[str, str]]:
    from lightnets.data import data_requirements

    return data_requirements(args.data)


def confusion_target(args: argparse.Namespace, folder: Path, stem: str = "confusion"
                     ) -> Path | None:
    """Where the confusion matrix goes: ``--confusion`` (checked now, an error when it cannot
    be written), else in ``folder`` (the checkpoint's) when that can be written and drawn."""
    from lightnets.files import WriteError, check_writable_file
    from lightnets.optional import by_product

    if args.confusion:
        check_writable_file(args.confusion, "--confusion")
        return Path(args.confusion) if by_product("matplotlib", args.confusion) else None
    png = folder / f"{stem}-{args.split}.png"
    what = "the confusion matrix" if stem == "confusion" else "the example predictions"
    try:
        check_writable_file(png, what)
    except WriteError as error:
        warnings.warn(f"{what[4:]} left out: {error}", stacklevel=2)
        return None
    return png if by_product("matplotlib", str(png)) else None


def run(args: argparse.Namespace) -> int:
    from lightnets.checkpoint import checkpoint_path
    from lightnets.export.predict import evaluate_exported, is_exported, model_task
    from lightnets.files import check_writable_file
    from lightnets.train import evaluate, save_confusion_png
    from lightnets.train.det_evaluate import save_boxes_png, save_predictions
    from lightnets.train.seg_evaluate import save_examples_png

    path = (checkpoint_path(args.checkpoint, prefer="best") if args.checkpoint
            else Path(args.weights).expanduser())
    with warnings_as_lines():
        task = model_task(path, args.model)
        if args.save_predictions:
            if task != "detection":
                raise CommandError("--save-predictions writes a detector's boxes; "
                                   f"{path} is a {task} model")
            check_writable_file(args.save_predictions, "--save-predictions")
        # weights may sit in a read-only cache: their matrix goes to the current folder
        png = confusion_target(args, path.parent if args.checkpoint else Path(),
                               {"segmentation": "segmentation", "detection": "detections"}
                               .get(task, "confusion"))
        examples = EXAMPLES if task != "classification" and png is not None else 0
        if is_exported(path):
            result = evaluate_exported(path, data=args.data, split=args.split,
                                       batch_size=args.batch_size, workers=args.workers,
                                       limit_batches=args.limit_batches, examples=examples)
        else:
            result = evaluate(path, data=args.data, split=args.split,
                              batch_size=args.batch_size, device=args.device,
                              workers=args.workers, limit_batches=args.limit_batches,
                              model=args.model, source=args.source, examples=examples)
    failure = None  # the numbers are printed even when the picture cannot be written
    if png is not None:
        try:
            if task == "detection":
                save_boxes_png(result, png, title=f"{path.name}: mAP {result.map:.3f}, mAP@.5 "
                               f"{result.map_50:.3f} on {result.count} {args.split} images")
            elif task == "segmentation":
                save_examples_png(result, png, title=f"{path.name}: mIoU {result.miou:.2%} on "
                                  f"{result.count} {args.split} images")
            else:
                save_confusion_png(result, png, title=f"{path.name}: top-1 {result.top1:.2%} "
                                   f"on {result.count} {args.split} images")
        except OSError as error:
            failure, png = error, None
    if args.save_predictions:
        save_predictions(result, args.save_predictions)
    show(args, path, result, png)
    if failure is not None:
        raise failure
    return 0


def show(args: argparse.Namespace, path: Path, result: Any, png: Path | None) -> None:
    """The per-class table and the summary line, or the JSON object."""
    from rich.table import Table

    if hasattr(result, "miou"):
        show_segmentation(args, path, result, png)
        return
    if hasattr(result, "map_50"):
        show_detection(args, path, result, png)
        return
    if args.json:
        print(json.dumps({"top1": result.top1, "top5": result.top5, "loss": result.loss,
                          "count": result.count,
                          "per_class": dict(zip(result.classes, result.per_class)),
                          "confusion_png": str(png) if png else None, "checkpoint": str(path)}))
        return
    if len(result.classes) <= 100:
        table = Table(title="per-class accuracy")
        for column in ("class", "images", "accuracy"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for name, accuracy, row in zip(result.classes, result.per_class, result.confusion):
            table.add_row(name, str(sum(row)), f"{accuracy:.2%}")
        console.print(table)
    console.print(f"{path}: top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  loss "
                  f"{result.loss:.4f}  on {result.count} {args.split} images"
                  + (f"; confusion matrix: {png}" if png else ""),
                  highlight=False, soft_wrap=True, markup=False)


def show_segmentation(args: argparse.Namespace, path: Path, result: Any, png: Path | None
                      ) -> None:
    """A segmenter's per-class IoU table and summary line, or its JSON object."""
    from rich.table import Table

    if args.json:
        print(json.dumps({"miou": result.miou, "pixel_accuracy": result.pixel_accuracy,
                          "loss": result.loss, "count": result.count,
                          "per_class_iou": dict(zip(result.classes, result.per_class_iou)),
                          "examples_png": str(png) if png else None, "checkpoint": str(path)}))
        return
    table = Table(title="per-class IoU")
    for column in ("class", "pixels", "IoU"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, iou, row in zip(result.classes, result.per_class_iou, result.confusion):
        table.add_row(name, f"{sum(row):,}", "-" if iou is None else f"{iou:.2%}")
    console.print(table)
    console.print(f"{path}: mIoU {result.miou:.2%}  pixel accuracy {result.pixel_accuracy:.2%}  "
                  f"loss {result.loss:.4f}  on {result.count} {args.split} images"
                  + (f"; examples: {png}" if png else ""),
                  highlight=False, soft_wrap=True, markup=False)


def show_detection(args: argparse.Namespace, path: Path, result: Any, png: Path | None) -> None:
    """A detector's per-class AP table and summary line, or its JSON object."""
    from rich.table import Table

    if args.json:
        print(json.dumps({**result.as_dict(), "examples_png": str(png) if png else None,
                          "predictions": args.save_predictions, "checkpoint": str(path)}))
        return
    table = Table(title="per-class AP@[.5:.95]")
    for column in ("class", "AP"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, ap in result.per_class_ap.items():
        table.add_row(name, "-" if ap is None else f"{ap:.3f}")
    console.print(table)
    console.print(f"{path}: mAP@[.5:.95] {result.map:.3f}  mAP@.5 {result.map_50:.3f}  "
                  f"mAP@.75 {result.map_75:.3f}  on {result.count} {args.split} images "
                  f"({result.objects} objects, {result.detections} detections)"
                  + (f"; examples: {png}" if png else ""),
                  highlight=False, soft_wrap=True, markup=False)
