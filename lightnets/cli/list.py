"""``lightnets list [PATTERN]``: the registered models with their task, family, params and MACs
(at each model's default input: 224 or 299 for classifiers, 520 for segmenters, 320 or 800 for
detectors)."""

from __future__ import annotations

import argparse
import json

from rich.table import Table

from lightnets.cli._common import CommandError, console
from lightnets.registry import TASKS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list the registered models",
                                   description="List registered models matching shell-style "
                                   "patterns, with params and MACs at the default input size.")
    parser.add_argument("patterns", nargs="*", default=["*"], metavar="PATTERN",
                        help="shell-style wildcard, e.g. 'mobilenet*' (default: all)")
    parser.add_argument("--task", choices=TASKS, default=None,
                        help="only the models of one task (default: all)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--markdown", action="store_true",
                        help="print a Markdown table with paper, params, MACs and published "
                        "top-1 (segmenters: mIoU, detectors: box mAP)")
    parser.set_defaults(func=run)


def human(count: int | None, unit: str = "") -> str:
    """``3504872`` -> ``3.50M``."""
    if count is None:
        return "—"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(count) >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count}{unit}"


def run(args: argparse.Namespace) -> int:
    from lightnets.profile.model_info import model_info
    from lightnets.registry import aliases_of, list_models, resolve_name

    names = sorted({resolve_name(n) for n in list_models(args.patterns, include_aliases=True,
                                                         task=args.task)})
    if not names:
        what = f"{args.task} model" if args.task else "model"
        raise CommandError(f"no {what} matches {' '.join(args.patterns)!r}; try `lightnets list`")
    infos = [model_info(name) for name in names]
    if args.json:
        console.print_json(json.dumps([info.as_dict() for info in infos]))
        return 0
    if args.markdown:
        print(markdown_table(infos))
        return 0
    table = Table(title=f"lightnets models ({len(infos)})")
    for column, justify in (("name", "left"), ("task", "left"), ("family", "left"),
                            ("params", "right"), ("MACs", "right"), ("input", "right"),
                            ("aliases", "left")):
        table.add_column(column, justify=justify)
    for info in infos:
        table.add_row(info.name, info.task, info.family, human(info.params), human(info.macs),
                      "x".join(map(str, info.default_input_size)), ", ".join(aliases_of(info.name)))
    console.print(table)
    return 0


def markdown_table(infos: list) -> str:
    """The model zoo's tables (docs/zoo.md builds them with this): one row per model,
    published top-1 (segmenters: mIoU) where known."""
    from lightnets.tasks import get_task

    # the published accuracy column: ImageNet top-1, or mIoU / COCO box mAP where torchvision
    # published it
    tasks = sorted({info.task for info in infos}, reverse=True)
    label = " / ".join(get_task(task).reference_metric[1] for task in tasks)
    lines = [f"| model | paper | params | MACs | input | published {label} |",
             "|---|---|---:|---:|---:|---:|"]
    for info in infos:
        metric = info.reference.get(get_task(info.task).reference_metric[0])
        lines.append(f"| `{info.name}` | {info.paper} | {human(info.params)} | {human(info.macs)} "
                     f"| {info.default_input_size[1]} | {metric if metric is not None else '—'} |")
    return "\n".join(lines)
