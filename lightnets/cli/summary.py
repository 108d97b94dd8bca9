"""``lightnets summary NAME``: the per-layer cost table of a model, or its totals as JSON;
``lightnets summary --checkpoint CKPT``: a trained (or pruned) model's, beside the registered
architecture it came from."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import CommandError, console, parse_input_size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summary", help="per-layer params, MACs and memory of a model",
        description="Count a model's params, MACs (conv + linear multiply-accumulates), other "
        "element ops, parameter and activation memory on the meta device, layer by layer. With "
        "--checkpoint, a pruned model's layers are shown beside the original's.")
    parser.add_argument("name", nargs="?", help="registered model name (see `lightnets list`)")
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="a checkpoint (or run folder: its best.pt) instead of a name: its "
                        "params and MACs per layer against the unpruned architecture")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: the model's default input size; a "
                        "checkpoint's: its trained size)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per pass (default 1)")
    parser.add_argument("--depth", type=int, default=3,
                        help="show sub-modules down to this depth (default 3)")
    parser.add_argument("--json", action="store_true",
                        help="print the totals and layers as JSON (nothing else on stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lightnets.profile import summary
    from lightnets.registry import resolve_name

    if (args.name is None) == (args.checkpoint is None):
        raise CommandError("give a model name or --checkpoint CKPT (one of them)")
    if args.checkpoint:
        return run_checkpoint(args)
    result = summary(resolve_name(args.name), args.input_size, depth=args.depth,
                     batch_size=args.batch_size)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        console.print(result.table())
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    from lightnets.checkpoint import load_checkpoint
    from lightnets.data.transforms import preprocess_input_size
    from lightnets.profile import summary
    from lightnets.prune.compare import comparison_table, layer_rows
    from lightnets.registry import meta_model

    state = load_checkpoint(args.checkpoint, prefer="best")
    size = args.input_size or (preprocess_input_size(state.preprocess) if state.preprocess
                               else None)
    pruned = summary(state.build_model(), size, depth=args.depth, batch_size=args.batch_size)
    original = summary(meta_model(state.model_name, **state.model_args), size,
                       depth=args.depth, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"original": original.totals(), "pruned": pruned.totals(),
                          "layers": layer_rows(original, pruned)}))
    else:
        what = "pruned " if state.pruning else ""
        console.print(comparison_table(original, pruned, f"{what}{state.model_name} "
                                       f"({state.path}) against the unpruned architecture"))
    return 0
