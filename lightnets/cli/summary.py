"""``lightnets summary NAME``: the per-layer cost table of a model, or its totals as JSON."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import console, parse_input_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary", help="per-layer params, MACs and memory of a model",
        description="Count a model's params, MACs (conv + linear multiply-accumulates), other "
        "element ops, parameter and activation memory on the meta device, layer by layer.")
    parser.add_argument("name", help="registered model name (see `lightnets list`)")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: the model's default input size)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per pass (default 1)")
    parser.add_argument("--depth", type=int, default=3,
                        help="show sub-modules down to this depth (default 3)")
    parser.add_argument("--json", action="store_true",
                        help="print the totals and layers as JSON (nothing else on stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightnets.profile import summary
    from lightnets.registry import resolve_name

    result = summary(resolve_name(args.name), args.input_size, depth=args.depth,
                     batch_size=args.batch_size)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        console.print(result.table())
    return 0
