"""``lightnets eval --checkpoint CKPT [--data DATA]``: the figures of the model's task
(:mod:`lightnets.tasks`) with the preprocessing stored in the checkpoint (or, for an exported
file, in its sidecar): a classifier's top-1, top-5, loss, per-class accuracy and a
confusion-matrix PNG; a segmenter's mIoU, pixel accuracy, per-class IoU and a PNG of validation
images beside their ground truth and predicted masks; a detector's COCO mAP, per-class AP and
its boxes drawn. ``--model NAME --weights PATH --data DATA`` evaluates torchvision or timm
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


EXAMPLES = 4  # validation images drawn with their predictions (segmenters, detectors)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate a checkpoint: top-1/top-5, mIoU or mAP, per-class figures",
        description="Evaluate a trained checkpoint on the validation split of its data (or of "
        "--data) and save a confusion-matrix PNG (segmenters and detectors: example "
        "predictions).")
    add_weights_arguments(parser)
    parser.add_argument("--data", help="digits, an image folder or a CIFAR folder; for "
                        "segmenters digits-seg, a VOC or a pair folder; for detectors "
                        "digits-det, a COCO, VOC or YOLO folder (default: the data the checkpoint "
                        "was trained on)")
    parser.add_argument("--split", choices=("val", "train"), default="val")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--workers", type=int, help="data-loading processes")
    parser.add_argument("--limit-batches", type=int, help="evaluate only this many batches")
    parser.add_argument("--confusion", metavar="PNG", help="where to save the confusion matrix, "
                        "or a segmenter's or detector's example predictions (default: "
                        "confusion-<split>.png, segmentation-<split>.png or "
                        "detections-<split>.png beside the checkpoint; for --weights, in the "
                        "current folder)")
    parser.add_argument("--save-predictions", metavar="JSON", help="detectors: write the "
                        "validation detections in COCO's results format (image_id, "
                        "category_id, bbox [x, y, w, h] in the original image's pixels, score)")
    parser.add_argument("--json", action="store_true",
                        help="print a JSON object (top1, top5 as fractions; loss; per_class; "
                        "segmenters: miou, pixel_accuracy, per_class_iou, count; detectors: "
                        "map, map_50, map_75, per_class_ap, count, objects, detections)")
    parser.set_defaults(func=run, requires=requirements)


def requirements(args: argparse.Namespace) -> list[tuple[str, str]]:
    from lightnets.data import data_requirements

    return data_requirements(args.data)


def picture_target(args: argparse.Namespace, folder: Path, task: Any) -> Path | None:
    """Where the task's picture goes (the confusion matrix, example predictions):
    ``--confusion`` (checked now, an error when it cannot be written), else in ``folder`` (the
    checkpoint's) when that can be written and drawn."""
    from lightnets.files import WriteError, check_writable_file
    from lightnets.optional import by_product

    if args.confusion:
        check_writable_file(args.confusion, "--confusion")
        return Path(args.confusion) if by_product("matplotlib", args.confusion) else None
    png = folder / f"{task.picture_stem}-{args.split}.png"
    try:
        check_writable_file(png, task.picture_name)
    except WriteError as error:
        warnings.warn(f"{task.picture_name[4:]} left out: {error}", stacklevel=2)
        return None
    return png if by_product("matplotlib", str(png)) else None


def run(args: argparse.Namespace) -> int:
    from lightnets.checkpoint import checkpoint_path
    from lightnets.export.predict import evaluable, open_model
    from lightnets.files import check_writable_file
    from lightnets.train import evaluate

    path = (checkpoint_path(args.checkpoint, prefer="best") if args.checkpoint
            else Path(args.weights).expanduser())
    with warnings_as_lines():
        opened = open_model(path, args.model, args.source)
        task = opened.task
        if args.save_predictions:
            if not task.saves_predictions:
                raise CommandError("--save-predictions writes a detector's boxes; "
                                   f"{path} is a {task.name} model")
            check_writable_file(args.save_predictions, "--save-predictions")
        # weights may sit in a read-only cache: their matrix goes to the current folder
        png = picture_target(args, path.parent if args.checkpoint else Path(), task)
        examples = EXAMPLES if task.draws_examples and png is not None else 0
        result = evaluate(evaluable(opened, device=args.device), data=args.data,
                          split=args.split, batch_size=args.batch_size, workers=args.workers,
                          limit_batches=args.limit_batches, examples=examples)
    failure = None  # the numbers are printed even when the picture cannot be written
    if png is not None:
        try:
            task.save_picture(result, png, title=f"{path.name}: {task.headline(result)} "
                              f"on {result.count} {args.split} images")
        except OSError as error:
            failure, png = error, None
    if args.save_predictions:
        task.save_predictions(result, args.save_predictions)
    show(args, path, task, result, png)
    if failure is not None:
        raise failure
    return 0


def show(args: argparse.Namespace, path: Path, task: Any, result: Any, png: Path | None
         ) -> None:
    """The per-class table and the summary line, or the JSON object."""
    from rich.table import Table

    if args.json:
        print(json.dumps({**task.summary_dict(result),
                          f"{task.picture_label}_png": str(png) if png else None,
                          **({"predictions": args.save_predictions}
                             if task.saves_predictions else {}),
                          "checkpoint": str(path)}))
        return
    shown = task.table(result)
    if shown is not None:
        title, columns, rows = shown
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="left" if column == "class" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(f"{path}: {task.summary(result, args.split)}"
                  + (f"; {task.picture_caption}: {png}" if png else ""),
                  highlight=False, soft_wrap=True, markup=False)
