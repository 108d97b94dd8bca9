"""``lightnets prune --checkpoint CKPT --target-macs 0.5``: remove channels from a trained model,
fine-tune it back, report params, MACs, accuracy and latency before and after."""

from __future__ import annotations

import argparse
import json
import sys

from lightnets.cli._common import CommandError, console, err_console, warnings_as_lines


def fraction(text: str) -> float:
    """A float in (0, 1) (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune", help="structured channel pruning with fine-tuning",
        description="Remove whole channels from a trained checkpoint (channels tied by residual "
        "additions, concatenations and depthwise convolutions go together), fine-tune it on "
        "its data, and write an ordinary lightnets checkpoint that every command loads. "
        "Reports params, MACs, top-1 before pruning / after pruning / after fine-tuning and "
        "the latency of both models in each fp32 backend.")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="trained checkpoint, or a run folder (its best.pt)")
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--target-macs", type=fraction, metavar="X",
                        help="fraction of the original MACs to keep, e.g. 0.5")
    amount.add_argument("--ratio", type=fraction, metavar="R",
                        help="fraction of the prunable channels to remove")
    amount.add_argument("--sweep", type=fraction, nargs="+", metavar="X",
                        help="several MACs targets, one pruned checkpoint each, and a plot of "
                        "accuracy against MACs (e.g. 0.75 0.5 0.3)")
    parser.add_argument("--method", choices=("l1", "bn-scale", "taylor"), default="l1",
                        help="channel importance: filter L1 norm (default), BatchNorm scale "
                        "(network slimming) or first-order Taylor (Molchanov et al. 2019)")
    allocation = parser.add_mutually_exclusive_group()
    allocation.add_argument("--global", dest="allocation", action="store_const",
                            const="global", default="global",
                            help="rank channels over the whole network (default)")
    allocation.add_argument("--uniform", dest="allocation", action="store_const",
                            const="uniform", help="remove the same share of every layer")
    parser.add_argument("--iterative", type=int, default=1, metavar="STEPS",
                        help="reach the target in STEPS steps, fine-tuning after each "
                        "(default 1)")
    parser.add_argument("--finetune-epochs", type=int, default=8, metavar="N",
                        help="fine-tuning epochs in total, shared over the steps (default 8; "
                        "0: none)")
    parser.add_argument("--lr", type=float, metavar="X",
                        help="fine-tuning peak learning rate (default: half the checkpoint's, "
                        "no warm-up, cosine decay)")
    parser.add_argument("--data", help="fine-tuning and validation data (default: the "
                        "checkpoint's)")
    parser.add_argument("--distill", action="store_true",
                        help="fine-tune with the unpruned model as teacher (knowledge "
                        "distillation, as --teacher in `lightnets train`)")
    parser.add_argument("--round-to", type=int, default=8, metavar="N",
                        help="keep channel counts multiples of N where possible (default 8)")
    parser.add_argument("--taylor-batches", type=int, default=8, metavar="N",
                        help="with --method taylor: training batches whose gradients score "
                        "the channels (default 8)")
    parser.add_argument("--output", metavar="FILE",
                        help="the pruned checkpoint (default: beside the input, "
                        "<stem>.pruned.pt; with --sweep, <stem>.pruned-<target>.pt)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--latency-size", type=int, metavar="S",
                        help="input side at which latency is timed (default: the trained one)")
    parser.add_argument("--latency-batch", type=int, nargs="*", default=[1, 32], metavar="N",
                        help="batch sizes to time (default 1 32; none: no timing)")
    parser.add_argument("--device", default="auto", help="fine-tuning device (default auto)")
    parser.add_argument("--limit-train-batches", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--limit-val-batches", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress display or step lines")
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from lightnets.prune.workflow import PruneConfig, prune_checkpoint, sweep

    config = PruneConfig(
        checkpoint=args.checkpoint, target_macs=args.target_macs, ratio=args.ratio,
        method=args.method, allocation=args.allocation, iterative=args.iterative,
        finetune_epochs=args.finetune_epochs, lr=args.lr, data=args.data, distill=args.distill,
        round_to=args.round_to, taylor_batches=args.taylor_batches, output=args.output,
        overwrite=args.overwrite, latency_size=args.latency_size,
        latency_batches=tuple(args.latency_batch), device=args.device,
        limit_train_batches=args.limit_train_batches, limit_val_batches=args.limit_val_batches,
        progress=args.progress and not args.json)
    if args.sweep:  # the first run's checks stand for all: fail before any work
        config.target_macs = args.sweep[0]
    shown = config.progress and sys.stderr.isatty()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=err_console, transient=True, disable=not shown)
    tasks: dict[str, int] = {}

    def progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    with warnings_as_lines(), bar:
        try:
            if args.sweep:
                reports, plot = sweep(config, list(args.sweep), console, progress)
            else:
                reports, plot = [prune_checkpoint(config, console, progress)], None
        except RuntimeError as error:  # the training loop's diverged loss, among others
            raise CommandError(str(error)) from None
    if args.json:
        print(json.dumps([report.as_dict() for report in reports] if args.sweep
                         else reports[0].as_dict()))
        return 0
    for report in reports:
        for line in report.lines():
            console.print(line, highlight=False, soft_wrap=True)
    if plot:
        console.print(f"accuracy against MACs: {plot}", highlight=False, soft_wrap=True)
    return 0
